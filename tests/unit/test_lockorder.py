"""Lock-order inversion: what both runtimes hand the lock-order graph, and the graph's verdicts
(cycles across threads reported once; one-thread cycles, gate-locked ones and re-entry not)."""

import threading

import pytest

from racewatch.runtime import lockorder
from tests.unit.engines import ENGINES, Driver


@pytest.mark.parametrize("engine", ENGINES)
def test_runtimes_report_each_new_held_set_and_lock_once(engine):
    calls = []
    a, b, r = threading.Lock(), threading.Lock(), threading.RLock()

    def on_edges(tid, held, held_sites, lock, site):
        addresses = [engine.sync_name(i)[1] for i in held]  # sync ids differ by engine
        calls.append((tid, dict(zip(addresses, held_sites)), engine.sync_name(lock)[1], site))

    with Driver(engine, threads=3, lock_order=on_edges) as d:
        d(1, "acquire", a, 10)           # nothing held: no edge
        d(1, "acquire", b, 11)           # a -> b
        d(1, "release", b, 12)
        d(1, "acquire", b, 13)           # the same combination again: not handed over
        d(1, "release", b, 14)
        d(1, "release", a, 15)
        d(2, "acquire", r, 20)
        d(2, "acquire", r, 21)           # re-entry: no edge
        d(2, "acquire", a, 22)           # r -> a
        d(2, "acquire", r, 23)           # re-entry while holding a: no edge a -> r
        d(2, "acquire", b, 24)           # {a, r} -> b, at their outermost acquisitions
        d(1, "acquire", b, 16)           # nothing held now
    assert calls == [(1, {id(a): 10}, id(b), 11),
                     (2, {id(r): 20}, id(a), 22),
                     (2, {id(a): 22, id(r): 20}, id(b), 24)]


def graph():
    found = []
    g = lockorder.Graph(lambda i: (object, 0x1000 + i), lambda name: f"lock {name[1]:x}",
                        found.append)
    return g, found


def test_two_threads_opposite_orders_is_reported_once():
    g, found = graph()
    g.on_edges(1, (1,), (0,), 2, 0)
    g.on_edges(2, (2,), (0,), 1, 0)
    g.on_edges(3, (2,), (0,), 1, 0)      # the same cycle again, from another thread
    assert [f.key for f in found] == [(1, 2)]
    assert [(a, b, e.tid) for a, b, e in found[0].steps] == [(1, 2, 1), (2, 1, 2)]


def test_one_thread_cycle_is_quiet_until_another_thread_closes_it():
    g, found = graph()
    g.on_edges(1, (1,), (0,), 2, 0)
    g.on_edges(1, (2,), (0,), 1, 0)
    assert found == []
    g.on_edges(2, (2,), (0,), 1, 0)
    assert [f.key for f in found] == [(1, 2)]


def test_a_common_gate_lock_silences_the_cycle_but_not_an_ungated_edge():
    g, found = graph()
    gate = 9
    g.on_edges(1, (1, gate), (0, 0), 2, 0)
    g.on_edges(2, (2, gate), (0, 0), 1, 0)
    assert found == []
    g.on_edges(3, (2,), (0,), 1, 0)       # b -> a without the gate
    assert [f.key for f in found] == [(1, 2)]
    assert all(gate not in e.gates for _, _, e in found[0].steps if e.tid == 3)


def test_different_gates_do_not_protect():
    g, found = graph()
    g.on_edges(1, (1, 8), (0, 0), 2, 0)
    g.on_edges(2, (2, 9), (0, 0), 1, 0)
    assert [f.key for f in found] == [(1, 2)]


def test_three_lock_cycle_across_three_threads():
    g, found = graph()
    g.on_edges(1, (1,), (0,), 2, 0)
    g.on_edges(2, (2,), (0,), 3, 0)
    assert found == []
    g.on_edges(3, (3,), (0,), 1, 0)
    assert [f.key for f in found] == [(1, 2, 3)]
    assert [(a, b) for a, b, _ in found[0].steps] == [(1, 2), (2, 3), (3, 1)]


def test_held_stack_is_rebuilt_from_the_acquiring_stack(monkeypatch):
    site = type("Site", (), {"function": "outer", "file": "/a.py", "line": 5})()
    monkeypatch.setattr(lockorder, "SITES", [None, site])
    stack = (("inner", "/a.py", 20), ("outer", "/a.py", 9), ("main", "/m.py", 1))
    assert lockorder._held_stack(1, stack) == (("outer", "/a.py", 5), ("main", "/m.py", 1))
    elsewhere = (("other", "/b.py", 3),)  # the function that took it has returned
    assert lockorder._held_stack(1, elsewhere) == (("outer", "/a.py", 5),)


def test_creation_is_forgotten_when_the_lock_dies():
    lock = threading.Lock()
    lockorder.created(lock, (("make", "/m.py", 1),))
    address = id(lock)
    assert lockorder.creation_of(address) == (("make", "/m.py", 1),)
    del lock
    assert lockorder.creation_of(address) is None
