"""The runtime under true parallelism: the stress fixtures, run many times over, must never
crash and must report exactly their `# RACE` lines (and nothing from norace_*), on every run.

Meant for free-threaded CPython without the GIL, where probes really run at once, and run by
the whole suite elsewhere too. RACEWATCH_STRESS_RUNS sets how many runs each case gets (2 by
default); the closing check of issue 15 is a hundred in a row:

    RACEWATCH_STRESS_RUNS=100 PYTHON_GIL=0 .venv313t/bin/python -m pytest tests/stress -q
"""

import glob
import os
import signal

import pytest

from tests.functional.test_fixtures import marked_lines, reported_lines, run_verdicts
from tests.helpers import FIXTURES

RUNS = int(os.environ.get("RACEWATCH_STRESS_RUNS", "2"))
FIXTURE_NAMES = sorted(os.path.basename(p)
                       for p in glob.glob(os.path.join(FIXTURES, "*race_stress_*.py")))
# More work per run than the fixture's default, and each way of recording an access.
CASES = [("--history=site",), ("--history=full",), ("--cover=atomic",)]


def crash(proc):
    """How the run died, if it did (a signal, a fatal error, a racewatch traceback), else ''."""
    if proc.returncode < 0:
        return signal.Signals(-proc.returncode).name
    for sign in ("Fatal Python error", "Traceback (most recent call last)", "corrupted",
                 "double free", "Segmentation fault"):
        if sign in proc.stderr:
            return sign
    return ""


@pytest.mark.slow
@pytest.mark.parametrize("options", CASES, ids=lambda o: " ".join(o))
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_stress(name, options, tmp_path, monkeypatch):
    monkeypatch.setenv("STRESS_ROUNDS", "600")
    expected = marked_lines(name) if name.startswith("race_") else set()
    for number in range(RUNS):
        run_dir = tmp_path / str(number)
        run_dir.mkdir()
        proc, races, inversions = run_verdicts(name, run_dir, *options, cwd=run_dir)
        where = f"run {number + 1} of {RUNS}"
        assert not crash(proc), f"{where}: {crash(proc)}\n{proc.stderr[-3000:]}"
        assert reported_lines(races) == expected, f"{where}\n{proc.stderr[-3000:]}"
        assert inversions == [], where
        assert proc.returncode == (66 if expected else 0), f"{where}\n{proc.stderr[-3000:]}"
