"""Every fixture run in-process under `pytest --race` (tox -e race): race_* tests are marked
racy and must report exactly their `# RACE` lines, norace_* must not race, failing_* are known
misses. Collected only when racewatch runs in this pytest process."""

import importlib
import sys

import pytest

import racewatch
from tests.functional.test_fixtures import _fixtures, marked_lines, reported_lines
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


def run_fixture(name):
    """Import the fixture (it runs its program at import); the races it reported."""
    before = len(racewatch.races())
    importlib.import_module(name[:-3])
    return racewatch.races()[before:]


@pytest.mark.racy
@pytest.mark.parametrize("name", _fixtures("race_"))
def test_race_fixture(name):
    assert reported_lines(run_fixture(name)) == marked_lines(name)


@pytest.mark.parametrize("name", _fixtures("norace_"))
def test_norace_fixture(name):
    assert run_fixture(name) == []


@pytest.mark.racy
@pytest.mark.parametrize("name", _fixtures("failing_"))
@pytest.mark.xfail(strict=True, reason="a known miss of the detector (see the fixture)")
def test_failing_fixture(name):
    assert reported_lines(run_fixture(name)) == marked_lines(name)
