"""Which locks each thread holds (the Python twin's lockset and lock-order bookkeeping).

A lock is held by the thread that acquired it until that thread releases it. A plain lock may
be released by another thread (a lock used as a signal, as Condition.wait's waiter is): then
nobody holds it, and its acquirer drops it at its next lock event (it is `stale`), as it does a
lock that died while held. Taking a lock while holding others is handed to the lock-order graph
only once the same thread releases it, and only from held locks still alive then. A plain lock
released by another thread is a signal, not a mutex: a semaphore (a gate that the first of a
group of threads takes and the last one releases, as reader-writer locks do) for the rest of its
life, so it takes no part in lock order any more and the graph forgets it. Inner
locks (a modelled primitive's own) are held like others but take no part in lock order. The C
runtime keeps the same rules.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py

class Held:
    """One lock a thread holds: its re-entry count, its sync var, where it was taken (the
    outermost acquisition, as (code, lasti)), and the lock-order event of that acquisition
    not shown to the graph yet: (held ids, their wheres), or None."""

    __slots__ = ("count", "var", "where", "order")

    def __init__(self, count, var, where, order):
        self.count, self.var, self.where, self.order = count, var, where, order


def prune(state, alive):
    """Drop the locks `state`'s thread no longer holds: released by another thread, or dead
    (`alive(id)` false). Returns True if the held set changed."""
    state.stale = False
    gone = [i for i, h in state.held.items() if h.var.owner != state.tid or not alive(i)]
    for i in gone:
        del state.held[i]
    return bool(gone)


def acquired(state, var, reentrant, count, where, order_wanted):
    """`state`'s thread acquired `count` levels of the lock of `var`. Returns True if the held
    set changed. `order_wanted`: a lock-order graph listens."""
    held = state.held.get(var.id)
    if held is not None and reentrant:
        held.count += count
        var.owner = state.tid
        return False
    if held is not None:  # a plain lock taken again: its release was unseen (C code released it)
        del state.held[var.id]
    order = None
    if state.held and order_wanted and not var.inner and not var.signal:
        ids = tuple(sorted(i for i, h in state.held.items()
                           if not h.var.inner and not h.var.signal))
        if ids and (ids, var.id) not in state.order_seen:
            order = (ids, tuple(state.held[i].where for i in ids))
    state.held[var.id] = Held(count, var, where, order)
    var.owner = state.tid
    return True


def released(state, var, reentrant, count, threads):
    """`state`'s thread releases `count` levels (0: all) of the lock of `var`. Returns
    (held set changed, the Held it left with its pending lock-order event, or None)."""
    if var.owner is None:
        return False, None  # taken out of racewatch's sight (before it started, by C code)
    if var.owner != state.tid:  # a plain lock released by another thread: a signal
        var.signal = True
        holder = threads[var.owner]
        holder.stale = True
        holder.locks = None
        var.owner = None
        return False, None
    held = state.held.get(var.id)
    if held is None:
        var.owner = None
        return False, None
    held.count = 0 if count == 0 or not reentrant else held.count - count
    if held.count > 0:
        return False, None
    del state.held[var.id]
    var.owner = None
    return True, held if held.order is not None else None


def order_event(state, var, held, alive):
    """The lock-order graph's arguments for the acquisition `held` of the lock of `var`, now
    that its thread releases it: (tid, held ids, held wheres, lock id, where), or None when no
    held lock is alive (`alive(id)`: and no semaphore) any more or the thread showed the graph
    this combination already."""
    ids, wheres = held.order
    key = (ids, var.id)
    if key in state.order_seen:
        return None
    state.order_seen.add(key)
    live = [(i, w) for i, w in zip(ids, wheres) if alive(i)]
    if not live:
        return None
    return (state.tid, tuple(i for i, _ in live), tuple(w for _, w in live), var.id, held.where)
