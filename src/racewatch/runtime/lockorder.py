"""Lock-order inversion (potential deadlock): the lock-acquisition graph and its cycles.

Both runtimes call `Graph.on_edges` from their acquire path only when a thread takes a lock
while holding others in a combination (held set, lock) it has not been seen taking before,
so the hot path stays a set lookup. An edge A->B means "B acquired while holding A"; a cycle
is reported once, unless it cannot deadlock: all its edges from one thread, or every edge
taken under one gate lock outside the cycle.
"""

import _thread
import itertools

from racewatch.rewriter.sites import SITES
from racewatch.runtime import forksafe, stacks

MAX_CYCLE = 8          # longer cycles are not searched (TSan bounds its search too)
MAX_PATHS = 1000       # simple paths explored per new edge
MAX_CHOICES = 10000    # combinations of edge instances tried per cycle

# id(lock) -> (weakref, creation stack) of locks made through threading's patched factories;
# a lock's entry dies with it, so an address that is reused never inherits a creation site.
# No lock of ours around it: single dict operations are atomic under the GIL, and an insert
# may allocate, run a finalizer that makes a lock, and so re-enter `created`.
_created = {}


def created(lock, stack):
    """The interceptors saw `lock` being created at `stack`."""
    import weakref
    key = id(lock)
    try:
        ref = weakref.ref(lock, lambda _r, key=key: _forget(key, _r))
    except TypeError:  # not weakly referenceable: its address could be reused, so keep nothing
        return
    _created[key] = (ref, stack)


def _forget(key, ref):
    entry = _created.get(key)
    if entry is not None and entry[0] is ref:  # not a newer lock's entry at that address
        _created.pop(key, None)


def creation_of(address):
    """The creation stack of the live lock at `address`, or None if its creation was not seen."""
    entry = _created.get(address)
    return entry[1] if entry is not None and entry[0]() is not None else None


class Edge:
    """One way an edge A->B was taken: by a thread, under a set of other held locks."""

    __slots__ = ("tid", "gates", "stack", "held_stack")

    def __init__(self, tid, gates, stack, held_stack):
        self.tid, self.gates, self.stack, self.held_stack = tid, gates, stack, held_stack


class Node:
    """What a report says of a lock: its description and where it was created (or seen)."""

    __slots__ = ("description", "stack", "observed")

    def __init__(self, description, stack, observed):
        self.description, self.stack, self.observed = description, stack, observed


class Inversion:
    """A reported cycle: [(lock id, next lock id, Edge)], and the Node of each lock id."""

    type = "lock-order-inversion"

    def __init__(self, steps, nodes):
        self.steps = steps
        self.nodes = nodes
        self.key = tuple(a for a, _, _ in steps)


class Graph:
    """The lock-acquisition graph of one process."""

    def __init__(self, sync_name, describe, on_cycle):
        self._sync_name = sync_name  # lock id -> (type, address), from the runtime
        self._describe = describe    # (type, address) -> text
        self._on_cycle = on_cycle    # called with an Inversion, outside this graph's lock
        self.reset()

    def reset(self):
        """Start empty (also in a fork child, where another thread may have held the lock)."""
        self._lock = forksafe.lock()
        # A finalizer run by an allocation inside an update may take locks and call back in:
        # such calls wait in the thread's `pending` list instead of taking the lock twice.
        self._local = _thread._local()
        self.edges = {}      # (a, b) -> [Edge]
        self.succ = {}       # a -> {b}
        self.nodes = {}      # lock id -> Node
        self.reported = set()

    def on_edges(self, tid, held, held_sites, lock, site):
        """The runtime's callback: thread `tid` acquired lock `lock` at probe site `site`
        while holding the locks `held` (sorted ids), taken at `held_sites`."""
        local = self._local
        call = (tid, held, held_sites, lock, stacks.capture())
        if getattr(local, "busy", False):
            local.pending.append(call)
            return
        local.busy, local.pending = True, [call]
        found = []
        try:
            while local.pending:
                found += self._add(*local.pending.pop(0))
        finally:
            local.busy = False
        for inversion in found:
            self._on_cycle(inversion)

    def _add(self, tid, held, held_sites, lock, stack):
        """Add the edges held -> lock; the new reportable cycles they close."""
        nodes = {lock: self._node(lock, stack)}
        new = []
        for a, a_site in zip(held, held_sites):
            held_stack = _held_stack(a_site, stack)
            nodes[a] = self._node(a, held_stack)
            gates = frozenset(held) - {a}
            new.append((a, Edge(tid, gates, stack, held_stack)))
        found = []
        with self._lock:
            for key, node in nodes.items():
                self.nodes.setdefault(key, node)
            for a, edge in new:
                self.edges.setdefault((a, lock), []).append(edge)
                self.succ.setdefault(a, set()).add(lock)
            for a, _ in new:
                found += self._cycles_through(a, lock)
        return found

    def _node(self, lock_id, seen_at):
        if lock_id in self.nodes:
            return self.nodes[lock_id]
        name = self._sync_name(lock_id)
        created_at = creation_of(name[1]) if name is not None else None
        observed = created_at is not None
        return Node(self._describe(name), created_at if observed else seen_at, observed)

    def _cycles_through(self, a, b):
        """New reportable cycles that use the edge a->b: paths b ->* a, closed by it."""
        found = []
        budget = [MAX_PATHS]
        for path in self._paths(b, a, [b], budget):
            cycle = path  # b ... a, then back to b
            start = cycle.index(min(cycle))
            key = tuple(cycle[start:] + cycle[:start])
            if key in self.reported:
                continue
            pairs = [(key[i], key[(i + 1) % len(key)]) for i in range(len(key))]
            chosen = _feasible([self.edges[p] for p in pairs], set(key))
            if chosen is None:
                continue
            self.reported.add(key)
            steps = [(x, y, e) for (x, y), e in zip(pairs, chosen)]
            found.append(Inversion(steps, {k: self.nodes[k] for k in key}))
        return found

    def _paths(self, here, goal, path, budget):
        if here == goal:
            yield list(path)
            return
        if len(path) >= MAX_CYCLE:
            return
        for nxt in sorted(self.succ.get(here, ())):
            if budget[0] <= 0:
                return
            budget[0] -= 1
            if nxt in path:
                continue
            path.append(nxt)
            yield from self._paths(nxt, goal, path, budget)
            path.pop()


def _feasible(instances, cycle):
    """One Edge per edge of the cycle such that the cycle could deadlock: taken by at least two
    threads, and under no common gate lock outside the cycle; None if there is none."""
    for n, choice in enumerate(itertools.product(*instances)):
        if n >= MAX_CHOICES:
            return None
        if len({e.tid for e in choice}) < 2:
            continue
        if frozenset.intersection(*(e.gates for e in choice)) - cycle:
            continue
        return list(choice)
    return None


def _held_stack(site, stack):
    """The stack where a held lock was taken at probe site `site`, rebuilt from the stack of
    the acquisition now: the innermost frame running that site's function, at the site's line,
    and its callers. (Recording a stack at every acquire would cost the hot path; a lock held
    across the return of the function that took it shows that frame alone.)"""
    where = SITES[site] if 0 <= site < len(SITES) else None
    if where is None:
        return stack[:1]
    for i, (function, file, _line) in enumerate(stack):
        if function == where.function and file == where.file:
            return ((function, file, where.line),) + tuple(stack[i + 1:])
    return ((where.function, where.file, where.line),)
