"""The pure-Python runtime (the fallback where no C compiler built the other) is as correct as
the C one: under finalizer load it records each event when it happens, never raises into the
program, never hangs, whichever runtime the rest of the suite runs."""

import os

from tests.helpers import FIXTURES, PROGRAMS, python_args, run


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


def test_builtins_a_program_replaces_never_run_inside_the_runtime(tmp_path):
    # Before: the twin's probes called `len`, `isinstance`... through `builtins`: a program's
    # replacement (test_functools' lru_cache'd len) ran inside racewatch, counted its calls.
    program = os.path.join(PROGRAMS, "same_replaced_builtins.py")
    plain = run(python_args(program), cwd=tmp_path)
    twin = run(python_args("-m", "racewatch", "run", "--runtime=python", program), cwd=tmp_path)
    assert plain.returncode == 0 and "replacements called from:" in plain.stdout, plain.stderr
    assert (twin.stdout, twin.stderr, twin.returncode) == (plain.stdout, plain.stderr, 0)
