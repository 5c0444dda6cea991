"""FastTrack's rules in both engines: which accesses race, what orders them, what is reported."""

import gc
import threading

import pytest

from racewatch.runtime import locations
from tests.unit.engines import ENGINES, Driver, engines, lock_addresses


class Obj:
    pass


class OneAttribute:  # one test's own: the size hint of its records starts unset
    pass


class Slotted:
    __slots__ = ("a",)  # and no __weakref__: the engines hold it strongly


A1, A2, A3 = 41, 42, 43  # atomic operations on a container (list.append ...)
S1, S2 = 51, 52           # plain operations on its shape (len, iteration ...)
SITES = {A1: "atomic_write", A2: "atomic_write", A3: "atomic_read", S1: "shape_read",
         S2: "shape_write"}


# -- the three kinds of race, and the event describing each ----------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("first, second", [("write", "write"), ("read", "write"),
                                           ("write", "read")])
def test_unordered_conflict_races(engine, first, second):
    obj = Obj()
    with Driver(engine) as d:
        d(0, first, obj, "a", 1)
        d(1, second, obj, "a", 2)
    assert d.races() == {(1, 2): 1}
    (event,) = d.events
    assert event.target is obj and event.key == "a"
    assert (event.site, event.tid, bool(event.is_write)) == (2, 1, second == "write")
    assert (event.prev_site, event.prev_tid, bool(event.prev_write)) == (1, 0, first == "write")
    assert (event.atomic, event.prev_atomic, event.lockset, event.prev_lockset) == (0, 0, (), ())
    assert event.prev_stack is None  # history=site records no stacks


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_never_race_with_reads(engine):
    obj = Obj()
    with Driver(engine, threads=3) as d:
        for thread, site in ((0, 1), (1, 2), (2, 3), (1, 4)):
            d(thread, "read", obj, "a", site)
    assert d.races() == {} and d.events == []


@pytest.mark.parametrize("engine", ENGINES)
def test_other_keys_and_objects_are_other_locations(engine):
    obj, other = Obj(), Obj()
    with Driver(engine, threads=3) as d:
        d(0, "write", obj, "a", 1)
        d(1, "write", obj, "b", 2)
        d(2, "write", other, "a", 3)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("keys", [
    ("k1", "".join(["k", "1"])), (12345678, int("12345678")), (1, True)])
def test_equal_keys_are_one_location(engine, keys):
    table = {}
    assert keys[0] == keys[1] and hash(keys[0]) == hash(keys[1])
    with Driver(engine) as d:
        d(0, "write", table, keys[0], 1)
        d(1, "write", table, keys[1], 2)
    assert d.races() == {(1, 2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_one_thread_never_races_with_itself(engine):
    obj = Obj()
    with Driver(engine, threads=2) as d:
        for site in range(1, 30):
            d(1, "write" if site % 3 else "read", obj, "a", site)
            d(1, "happens_before", obj)  # a new epoch between accesses
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_threads_get_ids_in_order_of_their_first_event(engine):
    with Driver(engine, threads=3) as d:
        assert [d(2, "current_tid"), d(1, "current_tid"), d(0, "current_tid")] == [1, 2, 0]


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("func, obj, key", [(getattr, 5, "real"), (len, "text", None),
                                            (hasattr, Obj(), 3)])
def test_a_probe_that_lands_nowhere_still_makes_the_thread(engine, func, obj, key):
    with Driver(engine, threads=3, sites={1: "call"}) as d:
        d(2, "call", func, obj, key, 1)  # nothing to record
        assert [d(1, "current_tid"), d(2, "current_tid")] == [2, 1]


# -- same epoch: nothing new is learnt, nothing is counted twice -------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_same_epoch_access_is_not_checked_again(engine):
    obj = Obj()
    with Driver(engine) as d:
        d(0, "write", obj, "a", 1)
        d(1, "write", obj, "a", 2)
        assert d.races() == {(1, 2): 1}
        d(1, "write", obj, "a", 2)  # same epoch as its last write: not a second race
        d(1, "read", obj, "a", 3)   # ordered after its own write: no race, but remembered
        assert d.races() == {(1, 2): 1}
        d(0, "write", obj, "a", 1)  # a new epoch of thread 0: races with thread 1 again
    assert d.races() == {(1, 2): 2, (1, 3): 1}
    assert len(d.events) == 2


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", ["compact", "full"])
@pytest.mark.parametrize("op", ["write", "read"])
def test_same_epoch_keeps_the_latest_site(engine, layout, op):
    """The same access from a second site in one epoch moves the remembered site there: a
    report names the line whose value the other thread may see."""
    obj = Obj()
    with Driver(engine) as d:
        if layout == "full":  # accesses of two epochs in one record: the C engine's full layout
            d(1, "write", obj, "b", 9)
            d(1, "happens_before", Obj())
        d(1, op, obj, "a", 1)
        d(1, op, obj, "a", 2)  # same epoch, another site: site 2 is the latest
        d(1, op, obj, "a", 2)
        d(0, "write", obj, "a", 3)
    assert d.races() == {(2, 3): 1}
    (event,) = d.events
    assert (event.prev_site, event.prev_tid) == (2, 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_same_epoch_latest_site_of_shared_reads(engine):
    obj = Obj()
    with Driver(engine, threads=3) as d:
        d(0, "read", obj, "a", 1)
        d(1, "read", obj, "a", 2)  # concurrent reads: one per thread from now
        d(1, "read", obj, "a", 4)  # same epoch of thread 1: its read is now at site 4
        d(2, "write", obj, "a", 3)
    assert d.races() == {(1, 3): 1, (3, 4): 1}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("history", [False, True])
def test_same_epoch_latest_site_takes_its_stack(engine, history):
    """With full history, the moved access carries the later access's stack."""
    obj = Obj()

    def first():
        d.engine.write(obj, "a", 1)

    def second():
        d.engine.write(obj, "a", 2)

    with Driver(engine, history_full=history) as d:
        d.call(1, first)
        d.call(1, second)
        d(0, "write", obj, "a", 3)
    (event,) = d.events
    assert event.prev_site == 2
    names = [code.co_name for code, _line in event.prev_stack or ()]
    assert ("second" in names and "first" not in names) if history else not names


@pytest.mark.parametrize("engine", ENGINES)
def test_same_epoch_plain_access_covers_a_later_atomic_one(engine):
    """A plain write stays the remembered access when an atomic one follows from elsewhere."""
    box = []
    with Driver(engine, sites=SITES) as d:
        d(1, "write", box, locations.SHAPE, 5)  # a plain shape write (an unregistered site)
        d(1, "atomic_write", box, A1)
        d(0, "atomic_write", box, A2)
    assert d.races() == {(5, A2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_second_site_in_the_same_epoch_is_checked_on_a_racy_location(engine):
    """A second site racing with the same access is a pair of its own."""
    obj = Obj()
    with Driver(engine) as d:
        d(0, "write", obj, "a", 1)
        d(1, "read", obj, "a", 2)  # races: the location is now known to race
        d(1, "read", obj, "a", 3)  # same epoch, another site: checked, another pair
        d(1, "read", obj, "a", 3)  # same epoch, same site: skipped, not counted again
    assert d.races() == {(1, 2): 1, (1, 3): 1}


# -- read-shared: concurrent reads are all remembered ------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_write_races_with_every_concurrent_reader(engine):
    obj = Obj()
    with Driver(engine, threads=5) as d:
        for thread in (1, 2, 3):
            d(thread, "read", obj, "a", 10 + thread)
        d(4, "write", obj, "a", 20)
    assert d.races() == {(11, 20): 1, (12, 20): 1, (13, 20): 1}
    assert sorted((e.prev_tid, e.prev_site, bool(e.prev_write)) for e in d.events) == [
        (1, 11, False), (2, 12, False), (3, 13, False)]
    assert {(e.tid, e.site, bool(e.is_write)) for e in d.events} == {(4, 20, True)}


@pytest.mark.parametrize("engine", ENGINES)
def test_write_ordered_after_some_readers_races_with_the_others(engine):
    obj, edge = Obj(), Obj()
    with Driver(engine, threads=4) as d:
        d(1, "read", obj, "a", 11)
        d(2, "read", obj, "a", 12)
        d(1, "happens_before", edge)
        d(3, "happens_after", edge)
        d(3, "write", obj, "a", 13)
    assert d.races() == {(12, 13): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_ordered_reads_do_not_inflate(engine):
    """Reads ordered one after the other: a write ordered after the last is after all."""
    obj, edge1, edge2 = Obj(), Obj(), Obj()
    with Driver(engine, threads=4) as d:
        d(1, "read", obj, "a", 11)
        d(1, "happens_before", edge1)
        d(2, "happens_after", edge1)
        d(2, "read", obj, "a", 12)
        d(2, "happens_before", edge2)
        d(3, "happens_after", edge2)
        d(3, "write", obj, "a", 13)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_write_clears_the_shared_reads(engine):
    obj, edge = Obj(), Obj()
    with Driver(engine, threads=4) as d:
        d(1, "read", obj, "a", 11)
        d(2, "read", obj, "a", 12)
        d(1, "happens_before", edge)
        d(2, "happens_before", edge)
        d(3, "happens_after", edge)
        d(3, "write", obj, "a", 13)  # after both reads
        d(3, "happens_before", edge)
        d(1, "happens_after", edge)
        d(1, "read", obj, "a", 14)   # after the write; the old shared reads are gone
        d(1, "write", obj, "a", 15)
    assert d.races() == {}


# -- synchronization: edges, locks, locksets ---------------------------------------------------

TOKENS = {
    "instance": Obj,
    "slots": Slotted,
    "list": lambda: [1],
    "dict": dict,
    "int": lambda: int("12345678901234567890"),
    "tuple": lambda: (object(),),
    "str": lambda: "".join(["tok", "en"]),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", TOKENS)
def test_happens_before_after_orders_on_any_object(engine, kind):
    obj, token = Obj(), TOKENS[kind]()
    with Driver(engine) as d:
        d(0, "write", obj, "a", 1)
        d(0, "happens_before", token)
        d(1, "happens_after", token)
        d(1, "write", obj, "a", 2)
        d(1, "read", obj, "a", 3)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["list", "int", "str"])
def test_edges_go_through_identity_not_equality(engine, kind):
    obj, token, twin = Obj(), TOKENS[kind](), TOKENS[kind]()
    assert token == twin and token is not twin
    with Driver(engine) as d:
        d(0, "write", obj, "a", 1)
        d(0, "happens_before", token)
        d(1, "happens_after", twin)
        d(1, "write", obj, "a", 2)
    assert d.races() == {(1, 2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_happens_after_takes_only_what_came_before(engine):
    obj, token = Obj(), Obj()
    with Driver(engine) as d:
        d(0, "happens_before", token)
        d(0, "write", obj, "a", 1)  # after the edge's release: not covered by it
        d(1, "happens_after", token)
        d(1, "write", obj, "a", 2)
    assert d.races() == {(1, 2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_edges_are_transitive(engine):
    obj, first, second = Obj(), Obj(), [0]
    with Driver(engine, threads=3) as d:
        d(1, "write", obj, "a", 1)
        d(1, "happens_before", first)
        d(2, "happens_after", first)
        d(2, "happens_before", second)
        d(0, "happens_after", second)
        d(0, "write", obj, "a", 2)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_thread_end_publishes_the_thread_for_join(engine):
    obj, thread = Obj(), Obj()
    with Driver(engine) as d:
        d(1, "write", obj, "a", 1)
        d(1, "thread_end", thread)
        d(0, "happens_after", thread)
        d(0, "write", obj, "a", 2)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_join_of_another_thread_does_not_order(engine):
    obj, thread1, thread2 = Obj(), Obj(), Obj()
    with Driver(engine, threads=3) as d:
        d(1, "write", obj, "a", 1)
        d(1, "thread_end", thread1)
        d(2, "thread_end", thread2)
        d(0, "happens_after", thread2)
        d(0, "write", obj, "a", 2)
    assert d.races() == {(1, 2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_lock_release_orders_the_next_acquire(engine):
    obj, lock = Obj(), threading.Lock()
    with Driver(engine, threads=3) as d:
        for thread, site in ((1, 1), (2, 2), (0, 3)):
            d(thread, "acquire", lock)
            d(thread, "read", obj, "n", site)
            d(thread, "write", obj, "n", site + 10)
            d(thread, "release", lock)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_different_locks_do_not_order_and_show_in_locksets(engine):
    obj, lock1, lock2 = Obj(), threading.Lock(), threading.RLock()
    with Driver(engine) as d:
        d(0, "acquire", lock1)
        d(0, "write", obj, "n", 1)
        d(0, "release", lock1)
        d(1, "acquire", lock2)
        d(1, "write", obj, "n", 2)
        d(1, "release", lock2)
    assert d.races() == {(1, 2): 1}
    (event,) = d.events
    assert lock_addresses(engine, event.lockset) == (id(lock2),)
    assert lock_addresses(engine, event.prev_lockset) == (id(lock1),)


@pytest.mark.parametrize("engine", ENGINES)
def test_lockset_counts_reentry_and_empties_on_release(engine):
    obj, lock, other = Obj(), threading.RLock(), threading.Lock()
    with Driver(engine) as d:
        d(1, "acquire", lock)
        d(1, "acquire", lock)
        d(1, "acquire", other)
        d(1, "release", lock)  # still held once
        d(1, "write", obj, "a", 1)
        d(0, "write", obj, "a", 2)
        d(1, "release", lock)
        d(1, "release", other)
        d(1, "write", obj, "b", 3)
        d(0, "write", obj, "b", 4)
    first, second = sorted(d.events, key=lambda e: e.site)
    assert lock_addresses(engine, first.prev_lockset) == tuple(sorted((id(lock), id(other))))
    assert first.lockset == () and second.prev_lockset == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_release_of_a_lock_never_acquired_leaves_the_lockset_empty(engine):
    obj, lock = Obj(), threading.Lock()
    with Driver(engine) as d:
        d(1, "release", lock)
        d(1, "write", obj, "a", 1)
        d(0, "write", obj, "a", 2)
    assert [e.prev_lockset for e in d.events] == [()]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_plain_lock_released_by_another_thread_is_held_by_nobody(engine):
    """A lock used as a signal (Condition.wait's waiter): the releasing thread's clock reaches
    the next acquirer, and the first acquirer no longer holds it."""
    obj, signal = Obj(), threading.Lock()
    with Driver(engine, threads=3) as d:
        d(1, "acquire", signal)
        d(2, "write", obj, "a", 1)
        d(2, "release", signal)       # released by another thread
        d(1, "write", obj, "b", 2)    # thread 1 holds nothing now
        d(0, "write", obj, "b", 3)
        d(1, "acquire", signal)       # ordered after thread 2's release
        d(1, "write", obj, "a", 4)
    (event,) = d.events
    assert (event.site, event.prev_site) == (3, 2)
    assert event.prev_lockset == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lock_that_dies_while_held_leaves_the_lockset(engine):
    obj, lock = Obj(), threading.Lock()
    address = id(lock)
    with Driver(engine) as d:
        d(1, "acquire", lock)
        d(1, "write", obj, "a", 1)
        del lock
        gc.collect()
        d(1, "write", obj, "b", 2)
        d(0, "write", obj, "a", 3)
        d(0, "write", obj, "b", 4)
    by_site = {e.site: e for e in d.events}
    assert lock_addresses(engine, by_site[3].prev_lockset) == (address,)  # named for good
    assert by_site[4].prev_lockset == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_use_of_an_inner_lock_follows_the_primitives_releases(engine):
    """The program's own `with q.mutex:` (a plain event of an inner lock) is ordered after
    the primitive's earlier releases of it (a put's), not after what followed them; and the
    primitive's own next acquisition still is not ordered after those releases."""
    obj, inner = Obj(), threading.Lock()
    with Driver(engine, threads=3) as d:
        d(1, "write", obj, "before", 1)
        d(1, "acquire", inner, inner=True)
        d(1, "release", inner, inner=True)
        d(1, "write", obj, "after", 2)
        d(2, "acquire", inner, inner=True)   # the primitive again: its releases order nothing
        d(2, "read", obj, "before", 5)
        d(2, "release", inner, inner=True)
        d(0, "acquire", inner)               # plain use
        d(0, "read", obj, "before", 3)       # after the primitive's release: no race
        d(0, "read", obj, "after", 4)        # written after that release: a race
        d(0, "release", inner)
    assert d.races() == {(1, 5): 1, (2, 4): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_an_inner_lock_orders_nothing_but_excludes(engine):
    """A modelled primitive's own lock: accesses both made holding it do not race, but its
    release orders nothing after it."""
    obj, inner = Obj(), threading.Lock()
    with Driver(engine) as d:
        d(1, "acquire", inner, inner=True)
        d(1, "write", obj, "held", 1)
        d(1, "release", inner, inner=True)
        d(1, "write", obj, "after", 2)
        d(0, "acquire", inner, inner=True)
        d(0, "write", obj, "held", 3)     # both held it: no race
        d(0, "write", obj, "after", 4)    # the release ordered nothing: a race
        d(0, "release", inner, inner=True)
    assert d.races() == {(2, 4): 1}
    (event,) = d.events
    assert lock_addresses(engine, event.lockset) == (id(inner),)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_rlock_released_whole_and_restored(engine):
    """Condition.wait on an RLock: _release_save releases every level (count 0),
    _acquire_restore takes them back (count n)."""
    obj, lock = Obj(), threading.RLock()
    with Driver(engine) as d:
        d(1, "acquire", lock)
        d(1, "acquire", lock)
        d(1, "release", lock, 0)          # all levels
        d(1, "write", obj, "a", 1)
        d(1, "acquire", lock, 2)          # restored
        d(1, "release", lock)
        d(1, "write", obj, "b", 2)        # still held once
        d(0, "write", obj, "a", 3)
        d(0, "write", obj, "b", 4)
    by_site = {e.site: e for e in d.events}
    assert by_site[3].prev_lockset == ()
    assert lock_addresses(engine, by_site[4].prev_lockset) == (id(lock),)


@pytest.mark.parametrize("engine", ENGINES)
def test_dead_locks_are_told_once_and_unpinned_names_go(engine):
    kept, gone = threading.Lock(), threading.Lock()
    ids = []
    order = (lambda tid, held, wheres, lock, where: ids.extend((*held, lock)))  # their ids
    with Driver(engine, lock_order=order) as d:
        d(0, "acquire", kept)
        d(0, "acquire", gone)
        d(0, "release", gone)             # kept -> gone: both named in the graph, for good
        d(0, "release", kept)
        other = threading.Lock()
        d(0, "acquire", other)            # taken, never named anywhere else
        d(0, "release", other)
        engine.dead_locks()
        kept_id, gone_id = ids
        del kept, gone, other
        gc.collect()
        dead = engine.dead_locks()
        assert set(dead) >= {kept_id, gone_id} and len(dead) == 3
        assert engine.dead_locks() is None
        assert engine.sync_name(kept_id) is not None and engine.sync_name(gone_id) is not None
        (other_id,) = set(dead) - {kept_id, gone_id}
        assert engine.sync_name(other_id) is None


# -- atomic accesses ---------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_atomic_accesses_never_race_with_each_other(engine):
    box = []
    with Driver(engine, threads=3, sites=SITES) as d:
        d(1, "atomic_write", box, A1)
        d(2, "atomic_write", box, A2)
        d(0, "atomic_read", box, A3)
        d(1, "atomic_read", box, A3)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_atomic_write_races_with_plain_read(engine):
    box = []
    with Driver(engine, sites=SITES) as d:
        d(1, "atomic_write", box, A1)
        d(0, "shape_read", box, S1)
    (event,) = d.events
    assert (event.target, event.atomic, event.prev_atomic) == (box, 0, 1)
    assert d.races() == {(A1, S1): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_write_races_with_atomic_read(engine):
    box = []
    with Driver(engine, sites=SITES) as d:
        d(1, "shape_write", box, S2)
        d(0, "atomic_read", box, A3)
    (event,) = d.events
    assert (event.atomic, event.prev_atomic, bool(event.prev_write)) == (1, 0, True)


@pytest.mark.parametrize("engine", ENGINES)
def test_atomic_after_plain_in_same_epoch_keeps_the_plain_access(engine):
    """A thread's atomic write right after its plain write adds nothing: the plain one stays."""
    box = []
    with Driver(engine, sites=SITES) as d:
        d(1, "shape_write", box, S2)
        d(1, "atomic_write", box, A1)
        d(0, "atomic_write", box, A2)  # an atomic access still races with the plain write
    assert d.races() == {(A2, S2): 1}


# -- a record's history survives the change of its layout (C keeps one-epoch records compact) --

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("breaker", ["other_lockset", "new_epoch", "other_thread"])
def test_history_survives_the_record_turning_full(engine, breaker):
    """Accesses made in one epoch under one lockset are kept compactly by the C engine; the
    first access that does not fit turns the record full. Every earlier access must still be
    there, with its site, kind, atomicity and lockset, when a later thread races with it."""
    obj, box, lock, other = Obj(), [], threading.Lock(), threading.Lock()
    with Driver(engine, threads=3, sites=SITES) as d:
        d(1, "acquire", lock)
        d(1, "write", obj, "a", 1)
        d(1, "read", obj, "b", 2)
        d(1, "write", obj, "c", 3)
        d(1, "read", obj, "c", 4)  # same epoch: the write stays the one that counts
        d(1, "atomic_write", box, A1)
        if breaker == "other_lockset":
            d(1, "acquire", other)
            d(1, "write", obj, "d", 5)
            d(1, "release", other)
        elif breaker == "new_epoch":
            d(1, "happens_before", Obj())
            d(1, "write", obj, "d", 5)
        else:
            d(0, "write", obj, "d", 5)
        d(2, "write", obj, "a", 11)
        d(2, "write", obj, "b", 12)
        d(2, "read", obj, "c", 13)
        d(2, "shape_read", box, S1)
        d(1, "release", lock)
    assert d.races() == {(1, 11): 1, (2, 12): 1, (3, 13): 1, (A1, S1): 1}
    by_site = {e.site: e for e in d.events}
    for site, prev_write, prev_atomic in ((11, True, 0), (12, False, 0), (13, True, 0),
                                          (S1, True, 1)):
        event = by_site[site]
        assert (bool(event.prev_write), event.prev_atomic, event.prev_tid) == \
            (prev_write, prev_atomic, 1)
        assert lock_addresses(engine, event.prev_lockset) == (id(lock),)


def test_one_epoch_records_stay_compact_until_an_access_does_not_fit():
    from racewatch.runtime import _fast  # the C engine only: its memory layout
    objs = [Obj() for _ in range(3)]
    with Driver(_fast, threads=2) as d:
        for obj in objs:
            d(0, "write", obj, "a", 1)
            d(0, "read", obj, "b", 2)
        assert _fast.stats()["compact_records"] == 3
        d(1, "read", objs[0], "b", 3)  # concurrent reads: full, with a reader per thread
        d(0, "happens_before", Obj())
        d(0, "write", objs[1], "a", 4)  # the same thread in a later epoch
        stats = _fast.stats()
        assert (stats["objects"], stats["compact_records"]) == (3, 1)
    assert d.races() == {}



def test_objects_one_thread_made_and_many_read_share_their_read_sets():
    """Issue 15: what many threads' reads of many objects cost grows with the objects, not
    with threads x objects: equal read sets are one, and a class of one attribute keeps one
    cell per record."""
    from racewatch.runtime import _fast  # the C engine only: its memory layout
    objs = [OneAttribute() for _ in range(100)]
    made = Obj()
    with Driver(_fast, threads=5) as d:
        for obj in objs:
            d(0, "write", obj, "n", 1)
        d(0, "happens_before", made)
        for reader in range(1, 5):
            d(reader, "happens_after", made)
            for obj in objs:
                d(reader, "read", obj, "n", 2)
        stats = _fast.stats()
        # one set per distinct set of readers: here only the last ({1, 2, 3, 4}) is held
        assert (stats["objects"], stats["compact_records"], stats["readsets"]) == (100, 0, 1)
        # the first record is made before the class is known to have one attribute
        assert (stats["cells"], stats["cell_capacity"]) == (100, 101)
    assert d.races() == {}


# -- what is reported: once per unordered pair of sites, counted every time ---------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_reports_once_per_unordered_site_pair_and_counts_each_race(engine):
    objs = [Obj(), Obj(), Obj()]
    with Driver(engine) as d:
        d(1, "write", objs[0], "a", 5)
        d(0, "write", objs[0], "a", 3)
        d(1, "write", objs[1], "a", 3)  # the same pair, the other way round
        d(0, "write", objs[1], "a", 5)
        d(1, "write", objs[2], "z", 5)
        d(0, "read", objs[2], "z", 3)
    assert d.races() == {(3, 5): 3}
    assert [(e.site, e.prev_site) for e in d.events] == [(3, 5)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("full", [False, True])
def test_history_full_records_the_previous_stack(engine, full):
    obj = Obj()

    def nested_write():
        engine.write(obj, "a", 1)

    with Driver(engine, history_full=full) as d:
        d.call(1, nested_write)
        d(0, "write", obj, "a", 2)
    (event,) = d.events
    if not full:
        assert event.prev_stack is None
        return
    code, line = event.prev_stack[0]
    assert code is nested_write.__code__ and line == nested_write.__code__.co_firstlineno + 1
    assert len(event.prev_stack) > 1  # the frames that called it, up to the thread's start


# -- regressions: differences between the engines, fixed --------------------------------------

@pytest.mark.parametrize("engine", engines())
def test_write_races_with_more_than_eight_concurrent_readers(engine):
    obj = Obj()
    with Driver(engine, threads=11) as d:
        for thread in range(1, 11):
            d(thread, "read", obj, "a", 100 + thread)
        d(0, "write", obj, "a", 200)
    assert d.races() == {(100 + t, 200): 1 for t in range(1, 11)}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("engine", engines())
def test_on_race_errors_never_reach_the_program(engine):
    obj = Obj()

    def broken(event):
        raise RuntimeError("a broken reporter")

    with Driver(engine, on_race=broken) as d:
        d(0, "write", obj, "a", 1)
        d(1, "write", obj, "a", 2)
        d(0, "write", obj, "b", 3)
        d(1, "write", obj, "b", 4)
    assert d.races() == {(1, 2): 1, (3, 4): 1}


@pytest.mark.parametrize("engine", engines())
def test_events_after_thread_end_stay_in_the_same_thread(engine):
    obj, start, thread = Obj(), Obj(), Obj()
    with Driver(engine) as d:
        d(0, "write", obj, "a", 1)
        d(0, "happens_before", start)
        d(1, "happens_after", start)
        tid = d(1, "current_tid")
        d(1, "thread_end", thread)
        assert d(1, "current_tid") == tid
        d(1, "read", obj, "a", 2)  # e.g. a finalizer running as the thread exits
    assert d.races() == {}
