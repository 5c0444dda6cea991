"""Seeded random event traces (the format of replay.py) that a real program could produce.

Threads are started and joined through edges on per-thread tokens (or not at all), take locks
with mutual exclusion, publish and take edges on shared tokens, and touch objects of every kind
the engines treat differently: weak-referenceable instances, `__slots__` objects they hold
strongly, containers (plain and atomic operations on the shape, plain ones on items), classes,
a module (its attributes are its dict's entries), ints and tuples (attribute sites skip them),
and an ignored type.
"""

import random

KEYS = ("a", "b", "c")
PLAIN, ATTR = range(1, 9), range(11, 16)
SITES = {**{s: "attr" for s in ATTR}, 17: "shape_read", 18: "shape_read", 19: "shape_write",
         20: "shape_write", 21: "atomic_read", 22: "atomic_read", 23: "atomic_write",
         24: "atomic_write", 25: "atomic_write"}
BY_KIND = {}
for _site, _kind in SITES.items():
    BY_KIND.setdefault(_kind, []).append(_site)
LOCK_SITES = (30, 31)
DATA_KINDS = ("instance", "instance", "slots", "list", "dict", "set", "class", "module", "int",
              "tuple", "ignored")
CONTAINERS = ("list", "dict", "set")
MAX_THREADS = 6  # a write then races with at most 6 earlier accesses (C keeps 8 per access)


class _Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.objects = []
        self.events = []

    def new(self, kind):
        self.objects.append(kind)
        return len(self.objects) - 1

    def emit(self, thread, op, *args):
        self.events.append([thread, op, *args])


def random_trace(seed):
    """One trace; the same seed always gives the same trace."""
    g = _Gen(seed)
    rng = g.rng
    threads = rng.randint(2, MAX_THREADS)
    data = [g.new(rng.choice(DATA_KINDS)) for _ in range(rng.randint(3, 7))]
    data += [g.new(f"dict_of:{i}") for i in data if g.objects[i] == "module"]
    locks = [g.new("lock") for _ in range(rng.randint(1, 3))]
    shared = [g.new("instance"), g.new("list"), g.new("int")]  # edge tokens of every path
    start = [g.new("instance") for _ in range(threads)]
    end = [g.new("instance") for _ in range(threads)]
    state = ["running"] + ["new"] * (threads - 1)
    held = {}  # lock -> [owner thread, count]
    joinable = []
    for _ in range(rng.randint(20, 90)):
        waiting = [t for t, s in enumerate(state) if s == "new"]
        if waiting and rng.random() < 0.25:
            t = rng.choice(waiting)
            state[t] = "running"
            if rng.random() < 0.8:  # a modelled start; otherwise the start is unseen
                g.emit(0, "happens_before", start[t])
                g.emit(t, "happens_after", start[t])
            continue
        if joinable and rng.random() < 0.1:
            g.emit(0, "happens_after", end[joinable.pop(rng.randrange(len(joinable)))])
            continue
        t = rng.choice([t for t, s in enumerate(state) if s == "running"])
        roll = rng.random()
        if roll < 0.6:
            _access(g, t, g.objects, rng.choice(data))
        elif roll < 0.72:
            free = [lock for lock in locks if held.get(lock, [t])[0] == t]
            if free:
                lock = rng.choice(free)
                held.setdefault(lock, [t, 0])[1] += 1
                g.emit(t, "acquire", lock, LOCK_SITES[0])
        elif roll < 0.84:
            mine = [lock for lock, (owner, _) in held.items() if owner == t]
            if mine:
                _release(g, held, t, rng.choice(mine))
        elif roll < 0.96:
            g.emit(t, rng.choice(("happens_before", "happens_after")), rng.choice(shared))
        elif t != 0:
            for lock in [lock for lock, (owner, _) in held.items() if owner == t]:
                while lock in held:
                    _release(g, held, t, lock)
            g.emit(t, "thread_end", end[t])
            state[t] = "ended"
            if rng.random() < 0.7:
                joinable.append(t)
    return {"threads": threads, "objects": g.objects, "sites": SITES,
            "history_full": rng.random() < 0.25, "events": g.events}


def _release(g, held, t, lock):
    held[lock][1] -= 1
    if held[lock][1] == 0:
        del held[lock]
    g.emit(t, "release", lock, LOCK_SITES[1])


def _access(g, t, kinds, obj):
    rng = g.rng
    kind = kinds[obj]
    op = rng.choice(("read", "write"))
    if kind in CONTAINERS and rng.random() < 0.6:
        op = rng.choice(("shape_read", "shape_write", "atomic_read", "atomic_write"))
        g.emit(t, op, obj, rng.choice(BY_KIND[op]))
        return
    key = rng.choice((0, 1)) if kind == "list" else rng.choice(KEYS)
    site = rng.choice(ATTR if rng.random() < 0.5 else PLAIN)
    g.emit(t, op, obj, key, site)
