"""Every fixture gets its verdict: race_* report exactly their `# RACE` lines, norace_* nothing;
deadlock_* report a lock-order inversion on exactly their `# DEADLOCK` lines, nodeadlock_* none."""

import glob
import json
import os
import re
import sys

import pytest

from racewatch.reports import paths
from tests.helpers import FIXTURES, racewatch_args, run

MARK = re.compile(r"#\s*RACE\b")
DEADLOCK_MARK = re.compile(r"#\s*DEADLOCK\b")
IMPORT = re.compile(r"^\s*(?:from|import)\s+(mod_\w+)", re.M)


# A fixture for syntax or behaviour of newer Pythons only says so: `# requires: 3.15`.
REQUIRES = re.compile(r"^# requires: (\d+)\.(\d+)$", re.M)


def _fixtures(prefix):
    params = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, prefix + "*.py"))):
        with open(path, encoding="utf-8") as f:
            needed = REQUIRES.search(f.read())
        version = tuple(map(int, needed.groups())) if needed else (3, 0)
        params.append(pytest.param(os.path.basename(path), marks=pytest.mark.skipif(
            sys.version_info < version, reason=f"needs Python {version[0]}.{version[1]}")))
    return params


def marked_lines(name, mark=MARK):
    """(file, line) of every `# RACE` (or `mark`) line in the fixture and the helper modules
    it imports."""
    files = [name]
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        source = f.read()
    files += [m + ".py" for m in IMPORT.findall(source)]
    marks = set()
    for file in files:
        with open(os.path.join(FIXTURES, file), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if mark.search(line):
                    marks.add((file, number))
    return marks


def run_fixture(name, tmp_path, *options, kind="race", command=racewatch_args, cwd=FIXTURES):
    """Run a fixture under racewatch (`command(*args)` is the argv of `racewatch run ARGS`);
    returns (process, records of `kind` of every process)."""
    log = tmp_path / "race"
    proc = run(command("--format=json", f"--log-path={log}", *options,
                       os.path.join(FIXTURES, name)), cwd=cwd)
    records = []
    for path in glob.glob(f"{log}.*"):
        with open(path, encoding="utf-8") as f:
            stream = [json.loads(line) for line in f if line.strip()]
        records += [paths.absolute(r, stream[0]) for r in stream]  # paths as written: relative
    return proc, [r for r in records if kind is None or r["type"] == kind]


def run_verdicts(name, tmp_path, *options, cwd=FIXTURES):
    """(process, race records, lock-order inversion records) of a fixture's run."""
    proc, records = run_fixture(name, tmp_path, *options, kind=None, cwd=cwd)
    return (proc, [r for r in records if r["type"] == "race"],
            [r for r in records if r["type"] == "lock-order-inversion"])


def reported_lines(races):
    """(file basename, line) of both accesses' top frames, where they are fixture files."""
    lines = set()
    for race in races:
        for side in ("access", "previous"):
            top = race[side]["stack"][0]
            if os.path.dirname(top["file"]) == FIXTURES:
                lines.add((os.path.basename(top["file"]), top["line"]))
    return lines


def acquisition_lines(inversions):
    """(file basename, line) of the top frames of every acquisition in the cycles: the lock
    taken and the lock held, where they are fixture files."""
    lines = set()
    for inversion in inversions:
        for step in inversion["cycle"]:
            acquired = step["acquired"]
            for stack in (acquired["stack"], acquired["while_holding"]["stack"]):
                if stack and os.path.dirname(stack[0]["file"]) == FIXTURES:
                    lines.add((os.path.basename(stack[0]["file"]), stack[0]["line"]))
    return lines


@pytest.mark.parametrize("name", _fixtures("race_"))
def test_race_fixture(name, tmp_path):
    proc, races, inversions = run_verdicts(name, tmp_path)
    assert races, f"no race reported\n{proc.stderr}"
    assert proc.returncode == 66, proc.stderr
    assert reported_lines(races) == marked_lines(name)
    assert inversions == [], json.dumps(inversions, indent=1)


@pytest.mark.parametrize("name", _fixtures("norace_"))
def test_norace_fixture(name, tmp_path):
    proc, races, inversions = run_verdicts(name, tmp_path)
    assert races == [], json.dumps(races, indent=1)
    assert inversions == [], json.dumps(inversions, indent=1)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", _fixtures("deadlock_"))
def test_deadlock_fixture(name, tmp_path):
    proc, races, inversions = run_verdicts(name, tmp_path)
    assert len(inversions) == 1, f"expected one lock-order inversion\n{proc.stderr}"
    assert races == [], json.dumps(races, indent=1)
    assert proc.returncode == 66, proc.stderr
    assert acquisition_lines(inversions) == marked_lines(name, DEADLOCK_MARK)
    threads = {step["acquired"]["thread"] for step in inversions[0]["cycle"]}
    assert len(threads) >= 2, threads  # a cycle of one thread's edges is never reported


@pytest.mark.parametrize("name", _fixtures("nodeadlock_"))
def test_nodeadlock_fixture(name, tmp_path):
    proc, races, inversions = run_verdicts(name, tmp_path)
    assert inversions == [], json.dumps(inversions, indent=1)
    assert races == [], json.dumps(races, indent=1)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["deadlock_two_threads_opposite_order.py"])
def test_no_deadlock_report_when_turned_off(name, tmp_path):
    proc, records = run_fixture(name, tmp_path, "--no-detect-deadlocks", kind=None)
    findings = [r for r in records if r["type"] not in ("header", "summary")]
    assert findings == [] and proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", _fixtures("failing_"))
@pytest.mark.xfail(strict=True, reason="a known miss of the detector (see the fixture)")
def test_failing_fixture(name, tmp_path):
    proc, races = run_fixture(name, tmp_path)
    assert races and reported_lines(races) == marked_lines(name)
