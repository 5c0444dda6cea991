"""What racewatch patches keeps its identity, module, qualified name, picklability and
signature (threading.Lock and RLock, Condition, Event, Semaphore, Barrier, queues, futures):
a program sees the same under python, `racewatch run` and `python -X race`, and
multiprocessing's spawn and forkserver Manager() (which pickle threading.Lock and RLock into
the server) work the same."""

import os

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, racewatch_args, run

PROGRAM = os.path.join(PROGRAMS, "patched_identity.py")


@pytest.fixture(scope="module")
def plain():
    proc = run(python_args(PROGRAM), cwd=PROGRAMS, env=clean_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("how", ["racewatch run", "-X race"])
def test_patched_objects_look_the_same(plain, how):
    argv = (racewatch_args(PROGRAM) if how == "racewatch run"
            else python_args("-X", f"race=runtime={RUNTIME}", PROGRAM))
    watched = run(argv, cwd=PROGRAMS, env=clean_env(), timeout=600)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines() == plain.stdout.splitlines()
    assert "Manager() with spawn" in plain.stdout
