"""Lock-order inversion: what both runtimes hand the lock-order graph, and the graph's verdicts
(cycles across threads reported once; one-thread cycles, gate-locked ones and re-entry not)."""

import gc
import sys
import threading

import pytest

from racewatch.runtime import lockhooks, lockorder
from tests.unit.engines import ENGINES, INNER, REENTRANT, RLOCK, Driver


def _take(engine, lock, inner=False):
    engine.lock_acquired(lock, _flags(lock, inner), 1)


def _take_again(engine, lock):
    engine.lock_acquired(lock, _flags(lock), 1)


def _drop(engine, lock, inner=False):
    engine.lock_released(lock, _flags(lock, inner), 1)


def _flags(lock, inner=False):
    return (REENTRANT if isinstance(lock, RLOCK) else 0) | (INNER if inner else 0)


TAKE = _take.__code__.co_firstlineno + 1
AGAIN = _take_again.__code__.co_firstlineno + 1


@pytest.mark.parametrize("engine", ENGINES)
def test_runtimes_show_each_new_held_set_and_lock_once_at_its_release(engine):
    calls = []
    a, b, r = threading.Lock(), threading.Lock(), threading.RLock()

    def on_edges(tid, held, wheres, lock, where):
        lines = {engine.sync_name(i)[1]: w[2] for i, w in zip(held, wheres)}  # ids differ
        calls.append((tid, lines, engine.sync_name(lock)[1], where[2]))

    with Driver(engine, threads=3, lock_order=on_edges) as d:
        d.call(1, _take, engine, a)           # nothing held: no edge
        d.call(1, _take, engine, b)           # a -> b...
        assert calls == []
        d.call(1, _drop, engine, b)           # ...shown as b is released
        d.call(1, _take, engine, b)           # the same combination again: not shown
        d.call(1, _drop, engine, b)
        d.call(1, _drop, engine, a)
        d.call(2, _take, engine, r)
        d.call(2, _take_again, engine, r)     # re-entry: no edge
        d.call(2, _take, engine, a)           # r -> a
        d.call(2, _take_again, engine, r)     # re-entry while holding a: no edge a -> r
        d.call(2, _take_again, engine, b)     # {a, r} -> b, at their outermost acquisitions
        d.call(2, _drop, engine, b)
        d.call(2, _drop, engine, r)           # r is still held twice
        d.call(2, _drop, engine, a)
    assert calls == [(1, {id(a): TAKE}, id(b), TAKE),
                     (2, {id(a): TAKE, id(r): TAKE}, id(b), AGAIN),
                     (2, {id(r): TAKE}, id(a), TAKE)]


@pytest.mark.parametrize("engine", ENGINES)
def test_no_edge_into_a_signal_from_a_dead_lock_or_with_an_inner_lock(engine):
    """A lock another thread released is a signal, not a mutex (Condition.wait's waiter); a
    lock that died can take part in no deadlock; an inner lock orders nothing."""
    calls = []
    a, signal, inner = threading.Lock(), threading.Lock(), threading.Lock()
    doomed = threading.Lock()
    with Driver(engine, threads=3, lock_order=lambda *args: calls.append(args)) as d:
        d.call(1, _take, engine, a)
        d.call(1, _take, engine, signal)      # a -> signal, pending...
        d.call(2, _drop, engine, signal)      # ...until another thread releases it
        d.call(1, _drop, engine, a)
        d.call(1, _take, engine, doomed)
        d.call(1, _take, engine, a)           # doomed -> a, pending
        del doomed
        gc.collect()
        d.call(1, _drop, engine, a)           # doomed is gone: no edge
        d.call(1, _take, engine, inner, True)
        d.call(1, _take, engine, a)           # an inner lock is no part of lock order
        d.call(1, _drop, engine, a)
        d.call(1, _take, engine, a)
        d.call(1, _take, engine, inner, True)
        d.call(1, _drop, engine, inner, True)
        d.call(1, _drop, engine, a)
    assert calls == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lock_released_by_another_thread_is_a_semaphore_from_then_on(engine):
    """Named once to the graph (which drops the cycles through it), then out of lock order
    both ways, taken or held (readerwriterlock's gate: first reader in, last one out)."""
    calls = []
    a, gate = threading.Lock(), threading.Lock()
    with Driver(engine, threads=4, lock_order=lambda *args: calls.append(args)) as d:
        engine.semaphore_locks()
        d.call(1, _take, engine, gate)
        d.call(2, _drop, engine, gate)        # another thread releases it: a semaphore
        ids = engine.semaphore_locks()
        assert ids is not None and len(ids) == 1
        assert engine.sync_name(ids[0])[1] == id(gate)
        d.call(1, _take, engine, a)
        d.call(1, _take, engine, gate)        # a -> gate: no edge
        d.call(1, _drop, engine, gate)
        d.call(1, _drop, engine, a)
        d.call(2, _take, engine, gate)
        d.call(2, _take, engine, a)           # gate -> a: no edge
        d.call(2, _drop, engine, a)
        d.call(3, _drop, engine, gate)        # handed over again: named once only
        assert engine.semaphore_locks() is None
    assert calls == []


W = ("f", "/a.py", 1)  # where a lock was taken (function, file, line)


def graph():
    found = []
    g = lockorder.Graph(lambda i: (object, 0x1000 + i), lambda name: f"lock {name[1]:x}",
                        found.append)
    return g, found


def test_two_threads_opposite_orders_is_reported_once():
    g, found = graph()
    g.on_edges(1, (1,), (W,), 2, W)
    g.on_edges(2, (2,), (W,), 1, W)
    assert found == []                    # closed, waiting: either lock may turn a semaphore
    g.decide()
    g.on_edges(3, (2,), (W,), 1, W)      # the same cycle again, from another thread
    g.decide()
    assert [f.key for f in found] == [(1, 2)]
    assert [(a, b, e.tid) for a, b, e in found[0].steps] == [(1, 2, 1), (2, 1, 2)]


def test_one_thread_cycle_is_quiet_until_another_thread_closes_it():
    g, found = graph()
    g.on_edges(1, (1,), (W,), 2, W)
    g.on_edges(1, (2,), (W,), 1, W)
    g.decide()
    assert found == []
    g.on_edges(2, (2,), (W,), 1, W)
    g.decide()
    assert [f.key for f in found] == [(1, 2)]


def test_a_common_gate_lock_silences_the_cycle_but_not_an_ungated_edge():
    g, found = graph()
    gate = 9
    g.on_edges(1, (1, gate), (W, W), 2, W)
    g.on_edges(2, (2, gate), (W, W), 1, W)
    g.decide()
    assert found == []
    g.on_edges(3, (2,), (W,), 1, W)       # b -> a without the gate
    g.decide()
    assert [f.key for f in found] == [(1, 2)]
    assert all(gate not in e.gates for _, _, e in found[0].steps if e.tid == 3)


def test_different_gates_do_not_protect():
    g, found = graph()
    g.on_edges(1, (1, 8), (W, W), 2, W)
    g.on_edges(2, (2, 9), (W, W), 1, W)
    g.decide()
    assert [f.key for f in found] == [(1, 2)]


def test_three_lock_cycle_across_three_threads():
    g, found = graph()
    g.on_edges(1, (1,), (W,), 2, W)
    g.on_edges(2, (2,), (W,), 3, W)
    g.decide()
    assert found == []
    g.on_edges(3, (3,), (W,), 1, W)
    g.decide()
    assert [f.key for f in found] == [(1, 2, 3)]
    assert [(a, b) for a, b, _ in found[0].steps] == [(1, 2), (2, 3), (3, 1)]


def test_held_stack_is_rebuilt_from_the_releasing_stack():
    stack = (("inner", "/a.py", 20), ("outer", "/a.py", 9), ("main", "/m.py", 1))
    assert lockorder._held_stack(("outer", "/a.py", 5), stack) == \
        (("outer", "/a.py", 5), ("main", "/m.py", 1))
    # taken by a sibling of the releasing function (Condition.__enter__ / __exit__)
    exit_stack = (("Condition.__exit__", "/t.py", 290), ("user", "/u.py", 7))
    assert lockorder._held_stack(("Condition.__enter__", "/t.py", 280), exit_stack) == \
        (("Condition.__enter__", "/t.py", 280), ("user", "/u.py", 7))
    elsewhere = (("other", "/b.py", 3),)  # the function that took it has returned
    assert lockorder._held_stack(("outer", "/a.py", 5), elsewhere) == (("outer", "/a.py", 5),)


def graph_with_exits():
    """A graph, what it reported, and the lists of dead and semaphore lock ids it polls."""
    dead, semaphores, found = [], [], []

    def take(ids):
        taken = ids[:] or None
        ids.clear()
        return taken

    g = lockorder.Graph(lambda i: (object, 0x1000 + i), lambda name: "lock", found.append,
                        lambda: take(dead), lambda: take(semaphores))
    return g, found, dead, semaphores


def test_a_dead_lock_leaves_the_graph():
    g, found, dead, _ = graph_with_exits()
    g.on_edges(1, (1,), (W,), 2, W)
    dead.append(2)
    g.on_edges(2, (3,), (W,), 1, W)       # 2 died: its node and edges go
    assert 2 not in g.nodes and (1, 2) not in g.edges and 2 not in g.succ.get(1, ())
    g.on_edges(2, (1,), (W,), 3, W)
    g.on_edges(1, (3,), (W,), 1, W)       # 1 -> 3 -> 1 closes; 1 -> 2 -> 1 went with lock 2
    g.decide()
    assert [f.key for f in found] == [(1, 3)]


def test_a_lock_dying_a_mutex_decides_the_cycles_through_it():
    g, found, dead, _ = graph_with_exits()
    g.on_edges(1, (1,), (W,), 2, W)
    g.on_edges(2, (2,), (W,), 1, W)
    assert found == []
    dead.append(2)
    g.on_edges(3, (4,), (W,), 5, W)       # the next event hears of the death: reported now
    assert [f.key for f in found] == [(1, 2)]
    g.decide()
    assert len(found) == 1


@pytest.mark.parametrize("handoff_first", [True, False])
def test_a_semaphore_drops_the_cycles_through_it_whenever_it_shows(handoff_first):
    """The verdict does not depend on whether the lock showed itself a semaphore before or
    after the cycle closed (readerwriterlock's RWLockRead); other cycles stay."""
    g, found, dead, semaphores = graph_with_exits()
    if handoff_first:
        semaphores.append(1)
    g.on_edges(1, (1,), (W,), 2, W)       # 2 taken holding the gate 1, 1 holding 2
    g.on_edges(2, (2,), (W,), 1, W)
    g.on_edges(1, (3,), (W,), 4, W)       # an inversion of two mutexes beside it
    g.on_edges(2, (4,), (W,), 3, W)
    semaphores.append(1)
    dead.append(1)                        # the semaphore dies too: nothing more to decide
    g.decide()
    assert [f.key for f in found] == [(3, 4)]
    assert 1 not in g.nodes and (2, 1) not in g.edges


def test_creation_is_seen_and_forgotten_when_the_lock_dies():
    """Without a session: the lock hooks alone, creation tracked (what lock-order reports say
    of each lock)."""
    lockhooks.install(_NoEngine(), track_creation=True)
    try:
        lock = threading.Lock()
        line = sys._getframe().f_lineno - 1
    finally:
        lockhooks.uninstall()
    address = id(lock)
    top = lockhooks.creation_of(address)[0]
    assert top == ("test_creation_is_seen_and_forgotten_when_the_lock_dies", __file__, line)
    del lock
    assert lockhooks.creation_of(address) is None


class _NoEngine:
    """Hears lock events and does nothing."""

    @staticmethod
    def lock_acquired(lock, flags, count):
        pass

    lock_released = lock_acquired

    @staticmethod
    def happens_before(obj):
        pass

    happens_after = happens_before
