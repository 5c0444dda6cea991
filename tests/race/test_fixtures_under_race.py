"""Every fixture run in-process under `pytest --race` (tox -e race): race_* tests are marked
racy and must report exactly their `# RACE` lines, norace_* must not race, deadlock_* (racy too)
must report a lock-order inversion on their `# DEADLOCK` lines, nodeadlock_* nothing, failing_*
are known misses. Collected only when racewatch runs in this pytest process."""

import importlib
import os
import sys

import pytest

import racewatch
from racewatch.reports import paths
from tests.functional.test_fixtures import (DEADLOCK_MARK, _fixtures, acquisition_lines,
                                            marked_lines, reported_lines)
from tests.helpers import FIXTURES


def _racing():
    session = sys.modules.get("racewatch.session")
    return session is not None and session.current is not None and session.current.active


if not _racing():
    pytest.skip("runs under pytest --race (tox -e race)", allow_module_level=True)


@pytest.fixture(autouse=True)
def fixtures_importable(monkeypatch):
    """Each fixture imports fresh helper modules (mod_*), as in a process of its own."""
    monkeypatch.syspath_prepend(FIXTURES)
    for name in [m for m in sys.modules if m.startswith("mod_")]:
        monkeypatch.delitem(sys.modules, name)


def run_fixture(name, kind="race"):
    """Import the fixture (it runs its program at import); the reports of `kind` it made
    (None: all)."""
    before = len(racewatch.races())
    importlib.import_module(name[:-3])
    # paths as the session writes them (relative to the project root): made absolute
    header = {"cwd": os.getcwd(),
              "strip_path_prefix": sys.modules["racewatch.session"].current.options
              .strip_path_prefix}
    return [paths.absolute(r, header) for r in racewatch.races()[before:]
            if kind is None or r["type"] == kind]


@pytest.mark.racy
@pytest.mark.parametrize("name", _fixtures("race_"))
def test_race_fixture(name):
    assert reported_lines(run_fixture(name)) == marked_lines(name)


@pytest.mark.parametrize("name", _fixtures("norace_"))
def test_norace_fixture(name):
    assert run_fixture(name, kind=None) == []


@pytest.mark.racy
@pytest.mark.parametrize("name", _fixtures("deadlock_"))
def test_deadlock_fixture(name):
    found = run_fixture(name, kind="lock-order-inversion")
    assert acquisition_lines(found) == marked_lines(name, DEADLOCK_MARK)


@pytest.mark.parametrize("name", _fixtures("nodeadlock_"))
def test_nodeadlock_fixture(name):
    assert run_fixture(name, kind=None) == []


@pytest.mark.racy
@pytest.mark.parametrize("name", _fixtures("failing_"))
@pytest.mark.xfail(strict=True, reason="a known miss of the detector (see the fixture)")
def test_failing_fixture(name):
    assert reported_lines(run_fixture(name)) == marked_lines(name)
