"""The pure-Python runtime (the fallback where no C compiler built the other) is as correct as
the C one: under finalizer load it records each event when it happens, never raises into the
program, never hangs, whichever runtime the rest of the suite runs."""

import os

from tests.helpers import FIXTURES, python_args, run


def test_finalizers_under_a_lock_never_race_nor_raise(tmp_path):
    # Before: events arriving inside an update were queued and drained recursively, so
    # finalizers' updates under the lock raced with later ones (and RecursionError escaped).
    proc = run(python_args("-m", "racewatch", "run", "--runtime=python",
                           os.path.join(FIXTURES, "norace_finalizer_takes_lock.py")),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "DATA RACE" not in proc.stderr
    assert "Error" not in proc.stderr, proc.stderr
    assert proc.stdout == "made 12000\n"
