"""Shadow state dies with its object: a reused address (same `id()`) never inherits history.

Besides both engines, `pure` is the Python twin without the C runtime's death notices for
objects that cannot be weakly referenced (as where the C runtime is not built): it holds them
strongly and sweeps.
"""

import _thread
import os
import threading
import time

import pytest

from racewatch import env
from racewatch.runtime import api, shadow
from tests.unit.engines import Driver, _fast, table_sizes


def variants(c_bug=None, python_bug=None, pure_bug=None):
    """`engine` parameters (indirect); a known bug of one is a strict xfail there."""
    bugs = {"python": python_bug, "pure": pure_bug, "c": c_bug}
    return [pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=bug)]
                         if bug else []) for name, bug in bugs.items()]


@pytest.fixture
def engine(request, monkeypatch):
    if request.param == "pure":
        monkeypatch.setattr(shadow, "_watch_death", None, raising=False)
        monkeypatch.setattr(shadow, "_deaths", None, raising=False)
    return _fast if request.param == "c" else api


ALL = variants()


class Obj:
    pass


class Slotted:
    __slots__ = ("a",)  # no __weakref__: held strongly by the engines, dropped by the sweep


PER_THREAD = 10_000
BATCH = 100
# A bound on the records left: the strongly held ones wait for the next sweep, which runs
# once SWEEP_EVERY new ones were made (the same constant in fast/fast.h).
BOUND = 2 * shadow.SWEEP_EVERY + 64


def churn(engine, make, site, ids):
    """Write an attribute of BATCH fresh objects, dropping each; their ids go into `ids`."""
    for _ in range(BATCH):
        obj = make()
        engine.write(obj, "a", site)
        ids.add(id(obj))


@pytest.mark.parametrize("engine", ALL, indirect=True)
@pytest.mark.parametrize("make", [Obj, Slotted], ids=["weakref", "slots"])
def test_short_lived_objects_in_two_threads_never_race(engine, make):
    ids = {1: set(), 2: set()}
    with Driver(engine, threads=3) as d:
        for _ in range(PER_THREAD // BATCH):  # interleaved, so addresses pass between threads
            d.call(1, churn, engine, make, 1, ids[1])
            d.call(2, churn, engine, make, 2, ids[2])
        assert d.races() == {}
        # Free-threaded CPython's allocator never hands one thread's freed block to another.
        assert ids[1] & ids[2] or env.FREE_THREADED, "no address was reused: nothing shown"
        objects, _ = table_sizes(engine)
        assert objects <= BOUND
        # Control: the same two threads do race on an object that stays alive.
        survivor = make()
        d(1, "write", survivor, "a", 1)
        d(2, "write", survivor, "a", 2)
    assert d.races() == {(1, 2): 1}


@pytest.mark.parametrize("engine", variants(), indirect=True)
def test_sweep_keeps_the_records_of_live_objects(engine):
    holder = [Slotted()]  # the one reference besides the engine's own
    ids = set()
    with Driver(engine) as d:
        d(1, "write", holder[0], "a", 1)
        for _ in range(2 * shadow.SWEEP_EVERY // BATCH):
            d.call(0, churn, engine, Slotted, 3, ids)  # enough new records for a sweep
        d(0, "write", holder[0], "a", 2)
    assert d.races() == {(1, 2): 1}


def churn_sync(engine, make):
    for _ in range(BATCH):
        engine.happens_before(make())


@pytest.mark.parametrize("engine", variants(), indirect=True)
def test_sync_vars_of_dead_lists_are_dropped(engine):
    with Driver(engine) as d:
        for _ in range(PER_THREAD // BATCH):
            d.call(0, churn_sync, engine, list)
        d.call(0, churn, engine, Slotted, 1, set())  # an access: where the engines sweep
        _, syncs = table_sizes(engine)
    assert syncs <= BOUND


@pytest.mark.parametrize("engine", ALL, indirect=True)
def test_sync_vars_of_dead_instances_are_dropped(engine):
    with Driver(engine) as d:
        for _ in range(PER_THREAD // BATCH):
            d.call(0, churn_sync, engine, Obj)
        _, syncs = table_sizes(engine)
    assert syncs <= 64


@pytest.mark.parametrize("engine", variants(), indirect=True)
def test_a_new_thread_on_a_reused_ident_is_a_new_thread(engine):
    obj = Obj()
    with Driver(engine) as d:
        first = _run_in_thread(lambda: (engine.write(obj, "a", 1), _thread.get_ident())[1])

        def second():
            if _thread.get_ident() != first:
                return False  # only the thread that reuses the ident makes an event
            engine.write(obj, "a", 2)
            return True

        # idents are reused as soon as a thread is gone (glibc caches thread stacks), though a
        # thread made elsewhere meanwhile (another test's, under load) may take the cached one
        reused = any(_run_in_thread(second) for _ in range(1000))
        assert reused, "no thread ident was reused: the test would show nothing"
    assert d.races() == {(1, 2): 1}


def _run_in_thread(fn):
    """fn() on a new thread that is gone when this returns; its result."""
    box = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join()
    _wait_until_os_thread_exits(thread.native_id)
    return box[0]


def _wait_until_os_thread_exits(native_id):
    """join() returns once the Python thread is done, a moment before its OS thread exits and
    glibc caches its stack for reuse (and its ident with it): wait for that condition."""
    task = f"/proc/self/task/{native_id}"
    if not os.path.exists("/proc/self/task"):
        return
    for _ in range(100_000):  # a bound, not a timing: the exit normally takes microseconds
        if not os.path.exists(task):
            return
        time.sleep(0)
