"""The pure-Python runtime (the fallback where no C compiler built the other) is as correct as
the C one: under finalizer load it records each event when it happens, never raises into the
program, never hangs, whichever runtime the rest of the suite runs."""

import os

from tests.helpers import FIXTURES, PROGRAMS, python_args, run


def test_finalizers_under_a_lock_never_race_nor_raise(tmp_path):
    # Before: events arriving inside an update were queued and drained recursively, so
    # finalizers' updates under the lock raced with later ones (and RecursionError escaped).
    # The fixture collects at every allocation: on 3.12/3.13 the twin hung there (a collection
    # already scheduled ran, and its finalizer waited for the program's lock, as gc.enable()
    # returned under a lock of racewatch's whose next taker held the program's).
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


def test_a_probe_costs_the_program_one_frame_of_depth(tmp_path):
    # The twin's probes are Python calls (the C runtime's are none): a recursion with a probe at
    # every level gets one level less deep, never less (was two: RecursionError raised in the
    # probe's call of _probe reached the program), and one without probes as deep as python.
    program = os.path.join(PROGRAMS, "probe_recursion_depth.py")
    plain = run(python_args(program), cwd=tmp_path)
    twin = run(python_args("-m", "racewatch", "run", "--runtime=python", program), cwd=tmp_path)
    assert plain.returncode == twin.returncode == 0, twin.stderr
    (probed, unprobed), (twin_probed, twin_unprobed) = (
        map(int, proc.stdout.split()) for proc in (plain, twin))
    assert probed == unprobed and twin_unprobed == unprobed
    assert twin_probed == probed - 1


def test_the_program_sees_the_collection_state_it_set(tmp_path):
    # The twin pauses collections while it records: before, a thread asking gc.isenabled()
    # meanwhile saw False, and a thread leaving the twin turned them back on after the
    # program's own gc.disable(); and a fork child could hang (its at-fork hooks, threading's,
    # ran weakref callbacks that took the twin's lock, held for good by a thread left behind).
    program = os.path.join(PROGRAMS, "same_gc_state_under_probes.py")
    quiet = ("-W", "ignore::DeprecationWarning")  # 3.12+: fork() with threads running
    plain = run(python_args(*quiet, program), cwd=tmp_path)
    twin = run(python_args(*quiet, "-m", "racewatch", "run", "--runtime=python", program),
               cwd=tmp_path)
    assert plain.stdout == "wrong 0 enabled at the end False\n", plain.stderr
    assert (twin.stdout, twin.stderr, twin.returncode) == (plain.stdout, plain.stderr, 0)


