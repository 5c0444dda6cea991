"""Lock-order inversion (potential deadlock): the lock-acquisition graph and its cycles.

Both runtimes call `Graph.on_edges` when a thread releases a lock it took while holding
others, in a combination (held set, lock) it has not shown the graph before, so the hot path
stays a set lookup. An edge A->B means "B acquired while holding A"; a cycle is reported once,
unless it cannot deadlock: all its edges from one thread, or every edge taken under one gate
lock outside the cycle. A lock that dies leaves the graph (as ThreadSanitizer forgets a
destroyed mutex): no cycle through it can close any more, and the graph stays as small as
the set of live locks. A lock released by another thread than its acquirer is a semaphore
(runtime/held.py) and leaves the graph too, with the cycles through it (TSan leaves semaphores
out of deadlock detection). Whether a lock is one can be seen after a cycle through it closed,
so a closed cycle waits: it is reported when one of its locks dies as a mutex, or at `decide()`
(the end of a test, of the program, or a `racewatch.races()` call), so the verdict does not
depend on the order the program showed the two.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import itertools

from racewatch.runtime import lockhooks, owned, stacks

MAX_CYCLE = 8          # longer cycles are not searched (TSan bounds its search too)
MAX_PATHS = 1000       # simple paths explored per new edge
MAX_CHOICES = 10000    # combinations of edge instances tried per cycle


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

    def __init__(self, sync_name, describe, on_cycle, dead_locks=lambda: None,
                 semaphores=lambda: None):
        self._sync_name = sync_name  # lock id -> (type, address), from the runtime
        self._describe = describe    # (type, address) -> text
        self._on_cycle = on_cycle    # called with an Inversion, outside this graph's lock
        self._dead_locks = dead_locks  # () -> ids of locks that died since, or None
        self._semaphores = semaphores  # () -> ids of locks that became semaphores since, or None
        self.reset()

    def reset(self):
        """Start empty (also in a fork child, where another thread may have held the lock)."""
        self._lock = owned.forksafe()
        # A finalizer run by an allocation inside an update may take locks and call back in:
        # such calls wait in the thread's `pending` list instead of taking the lock twice.
        self._local = _thread._local()
        self.edges = {}      # (a, b) -> [Edge]
        self.succ = {}       # a -> {b}
        self.pred = {}       # b -> {a}
        self.nodes = {}      # lock id -> Node
        self.reported = set()
        self.pending = {}    # cycle key -> Inversion closed but not decided yet

    def on_edges(self, tid, held, held_wheres, lock, where):
        """The runtime's callback, as thread `tid` releases lock `lock`: it took it at `where`
        while holding the locks `held` (sorted ids), taken at `held_wheres` (a where is
        (function, file, line)). The stacks of those acquisitions are rebuilt from this one."""
        stack = stacks.capture()
        self._run((tid, held, tuple(_held_stack(w, stack) for w in held_wheres), lock,
                   _held_stack(where, stack)))

    def decide(self):
        """Report every closed cycle still waiting (none of its locks turned out a semaphore)."""
        self._run(None)

    def _run(self, call):
        """Add the edges of `call` (None: decide the waiting cycles), and of the calls that a
        finalizer made meanwhile in this thread; then report what was decided."""
        local = self._local
        if getattr(local, "busy", False):
            if call is not None:
                local.pending.append(call)
            return
        local.busy, local.pending = True, [call]
        found = []
        try:
            while local.pending:
                call = local.pending.pop(0)
                found += self._add(*call) if call is not None else self._decide()
        finally:
            local.busy = False
        for inversion in found:
            self._on_cycle(inversion)

    def _add(self, tid, held, held_stacks, lock, stack):
        """Add the edges held -> lock (their new cycles wait in `pending`); the cycles decided
        meanwhile (one of their locks died)."""
        semaphores, dead = self._semaphores(), self._dead_locks()
        nodes = {lock: self._node(lock, stack)}
        new = []
        for a, held_stack in zip(held, held_stacks):
            nodes[a] = self._node(a, held_stack)
            gates = frozenset(held) - {a}
            new.append((a, Edge(tid, gates, stack, held_stack)))
        with self._lock:
            for key, node in nodes.items():
                self.nodes.setdefault(key, node)
            for a, edge in new:
                self.edges.setdefault((a, lock), []).append(edge)
                self.succ.setdefault(a, set()).add(lock)
                self.pred.setdefault(lock, set()).add(a)
            # after the edges: a lock that left since the runtime sent them takes them along
            decided = self._leave(semaphores, dead)
            for a, _ in new:
                if a in self.nodes and lock in self.nodes:
                    for inversion in self._cycles_through(a, lock):
                        self.pending[inversion.key] = inversion
        return decided

    def _decide(self):
        semaphores, dead = self._semaphores(), self._dead_locks()
        with self._lock:
            decided = self._leave(semaphores, dead) + list(self.pending.values())
            self.pending.clear()
        return decided

    def _leave(self, semaphores, dead):
        """Locks leave the graph: a semaphore drops the waiting cycles through it, a dead
        lock decides them (it died a mutex). Returns those decided."""
        decided = []
        for ids, report in ((semaphores, False), (dead, True)):  # a semaphore may die later
            for key in ids or ():
                self._forget(key)
                for cycle in [c for c in self.pending if key in c]:
                    inversion = self.pending.pop(cycle)
                    if report:
                        decided.append(inversion)
        return decided

    def _forget(self, key):
        """A lock died or became a semaphore: its node and edges go."""
        if self.nodes.pop(key, None) is None:
            return
        for b in self.succ.pop(key, ()):
            self.edges.pop((key, b), None)
            self.pred.get(b, set()).discard(key)
        for a in self.pred.pop(key, ()):
            self.edges.pop((a, key), None)
            self.succ.get(a, set()).discard(key)

    def _node(self, lock_id, seen_at):
        if lock_id in self.nodes:
            return self.nodes[lock_id]
        name = self._sync_name(lock_id)
        created_at = lockhooks.creation_of(name[1]) if name is not None else None
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


def _held_stack(where, stack):
    """The stack of an acquisition at `where` (function, file, line), rebuilt from `stack`,
    the stack of the release now: the innermost frame running that function, at that line,
    and its callers; or, for a lock taken by a sibling of the function releasing it (one
    module's `__enter__` and `__exit__`), that line under the releasing function's callers;
    else that line alone (recording a stack at every acquire would cost the hot path)."""
    function, file, _ = where
    for i, (f, p, _line) in enumerate(stack):
        if f == function and p == file:
            return (where,) + tuple(stack[i + 1:])
    if stack and stack[0][1] == file:
        return (where,) + tuple(stack[1:])
    return (where,)
