"""Every fixture gets its verdict: race_* report exactly their `# RACE` lines, norace_* nothing."""

import glob
import json
import os
import re

import pytest

from tests.helpers import FIXTURES, racewatch_args, run

MARK = re.compile(r"#\s*RACE\b")
IMPORT = re.compile(r"^\s*(?:from|import)\s+(mod_\w+)", re.M)


def _fixtures(prefix):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, prefix + "*.py")))


def marked_lines(name):
    """(file, line) of every `# RACE` line in the fixture and the helper modules it imports."""
    files = [name]
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        source = f.read()
    files += [m + ".py" for m in IMPORT.findall(source)]
    marks = set()
    for file in files:
        with open(os.path.join(FIXTURES, file), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if MARK.search(line):
                    marks.add((file, number))
    return marks


def run_fixture(name, tmp_path, *options):
    """Run a fixture under racewatch; returns (process, race records of every process)."""
    log = tmp_path / "race"
    proc = run(racewatch_args("--format=json", f"--log-path={log}", *options,
                              os.path.join(FIXTURES, name)), cwd=FIXTURES)
    records = []
    for path in glob.glob(f"{log}.*"):
        with open(path, encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.strip()]
    return proc, [r for r in records if r["type"] == "race"]


def reported_lines(races):
    """(file basename, line) of both accesses' top frames, where they are fixture files."""
    lines = set()
    for race in races:
        for side in ("access", "previous"):
            top = race[side]["stack"][0]
            if os.path.dirname(top["file"]) == FIXTURES:
                lines.add((os.path.basename(top["file"]), top["line"]))
    return lines


@pytest.mark.parametrize("name", _fixtures("race_"))
def test_race_fixture(name, tmp_path):
    proc, races = run_fixture(name, tmp_path)
    assert races, f"no race reported\n{proc.stderr}"
    assert proc.returncode == 66, proc.stderr
    assert reported_lines(races) == marked_lines(name)


@pytest.mark.parametrize("name", _fixtures("norace_"))
def test_norace_fixture(name, tmp_path):
    proc, races = run_fixture(name, tmp_path)
    assert races == [], json.dumps(races, indent=1)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", _fixtures("failing_"))
@pytest.mark.xfail(strict=True, reason="a known miss of the detector (see the fixture)")
def test_failing_fixture(name, tmp_path):
    proc, races = run_fixture(name, tmp_path)
    assert races and reported_lines(races) == marked_lines(name)
