"""Semantic identity: a program behaves under racewatch exactly as under `python`.

Each program of tests/programs/same_*.py (and the package samepkg, run with -m) prints what
it can observe of itself: its frames, the recursion depth it reaches, warnings, tracebacks,
object lifetimes, pickling of threading objects. Its stdout, stderr and exit status must be
the same under `python`, `racewatch run`, `python -X race` and PYTHONRACE.
"""

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, racewatch_args, run

# mode -> (argv, environment) for the program arguments `args`
MODES = {
    "python": lambda args: (python_args(*args), clean_env(PYTHONHASHSEED="0")),
    "racewatch run": lambda args: (racewatch_args(*args), clean_env(PYTHONHASHSEED="0")),
    "-X race": lambda args: (python_args("-X", f"race=runtime={RUNTIME}", *args),
                             clean_env(PYTHONHASHSEED="0")),
    "PYTHONRACE": lambda args: (python_args(*args),
                                clean_env(PYTHONHASHSEED="0", PYTHONRACE=f"runtime={RUNTIME}")),
}


def under_every_mode(*args, cwd=PROGRAMS):
    """{mode: (stdout, stderr, status)} of the program run in `cwd`."""
    results = {}
    for mode, command in MODES.items():
        argv, env = command(args)
        proc = run(argv, cwd=cwd, env=env)
        results[mode] = (proc.stdout, proc.stderr, proc.returncode)
    return results


def assert_same_as_python(args, status, *facts, cwd=PROGRAMS):
    """The program exits `status` under python, printing each of `facts` (so it really ran
    what it observes), and behaves the same in every other mode."""
    results = under_every_mode(*args, cwd=cwd)
    out, err, plain_status = plain = results["python"]
    assert plain_status == status, err
    for fact in facts:
        assert fact in out + err
    assert {mode: plain for mode in results} == results


def test_frames_of_a_script():
    assert_same_as_python(["same_frames.py"], 0, "module stack: 1\n",
                          "frames of the main thread: 1\n",
                          "sys._getframe(1): call stack is not deep enough",
                          "recursion depth reached under limit 120:",
                          "UserWarning: at module level")


def test_frames_of_a_package_run_with_dash_m():
    assert_same_as_python(["-m", "samepkg", "status"], 1, "['status']\n",
                          "module stack: ['<module>', '_run_code', '_run_module_as_main']")


# Sources `python` reads with its file tokenizer, whose messages differ from compile()'s.
BAD_SOURCES = {
    "undeclared latin-1": b'text = "caf\xe9"\n',
    "NUL byte": b"x = 1\x00\nprint(x)\n",
    "unknown coding": b"# -*- coding: bogus -*-\nx = 1\n",
    "bad utf-8 after a good line": b"x = 1\ny = '\xff\xfe'\n",
    "never closed": b"x = (\n",
}


@pytest.mark.parametrize("source", BAD_SOURCES.values(), ids=BAD_SOURCES.keys())
def test_syntax_error_of_the_main_script(source, tmp_path):
    (tmp_path / "bad.py").write_bytes(source)
    assert_same_as_python(["bad.py"], 1, "Error", cwd=tmp_path)


def test_object_lifetimes():
    """Issue 16 item 4: shadow state never keeps an object alive nor shows in its attributes."""
    assert_same_as_python(["same_lifetimes.py"], 0,
                          "__del__ tuple key in a thread\nafter del tuple key",
                          "exception __weakref__: None 0",
                          "yielded future alive after del: False")


def test_threading_objects_pickle_as_under_python():
    assert_same_as_python(["same_pickle.py"], 0, "Lock pickled: True", "RLock pickled: True")


def test_spawn_and_forkserver_managers():
    assert_same_as_python(["same_manager.py"], 0, "spawn {'x': 1}\nforkserver {'x': 1}\n")


@pytest.mark.skipif(RUNTIME == "python", reason="the pure-Python runtime's probes are Python "
                                                "functions, which profilers see")
def test_profilers_see_only_the_programs_calls():
    """cProfile, sys.setprofile and sys.monitoring's CALL/C_RETURN events: racewatch's
    probes of builtin accessor calls are slots the eval loop runs, not calls."""
    assert_same_as_python(["same_profile.py"], 0, "cProfile <built-in method builtins.len> 1000",
                          "setprofile c_call module getattr 10")


@pytest.mark.skipif(RUNTIME == "python", reason="the pure-Python runtime's probes are Python "
                                                "functions, which profilers see")
def test_profilers_see_the_locks_own_methods():
    assert_same_as_python(["same_profile_locks.py"], 0,
                          "cProfile <method 'acquire' of '_thread.lock' objects> 100")


def test_ctrl_c_while_python_waits_for_threads_at_exit():
    """python prints the KeyboardInterrupt as an exception ignored in threading's shutdown and
    exits 0; it does not die of SIGINT."""
    assert_same_as_python(["same_interrupt_at_exit.py"], 0, "main done\n", "KeyboardInterrupt")


def test_builtins_and_a_copy_of_queue_without_its_c_part():
    """No name of racewatch's in builtins; queue imported with _queue blocked still imports."""
    assert_same_as_python(["same_namespaces.py"], 0, "builtins:", "pure-Python queue: queue item")


def test_builtins_a_program_replaces_are_called_by_it_alone():
    # Before: racewatch's code looked its builtins up in `builtins`, so the program's
    # replacements ran inside racewatch (CPython's test_functools: lru_cache'd len).
    assert_same_as_python(["same_replaced_builtins.py"], 0,
                          "lengths: [0, 0, 1, 2, 3, 3, 4, 5, 6, 1, 7, 2, 1]\n",
                          "items: 800", "replacements called from:")
