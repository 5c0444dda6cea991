"""Seeded random event traces (the format of replay.py) that a real program could produce.

Threads are started and joined through edges on per-thread tokens (or not at all), take locks
with mutual exclusion (re-entrant ones nested, a whole RLock released and restored as
Condition.wait does, plain ones also released by another thread as a signal; some inner, as a
modelled primitive's own), publish and take edges on shared tokens, and make every kind of probe on
every kind of object the engines treat differently: weak-referenceable instances, `__slots__`
objects they hold strongly, classes, a module (attributes, globals), cells, ints and tuples
(attribute sites skip them), an ignored type, builtin containers, subclasses and dict views
with item, slice (long ones too), membership, iteration, comparison, concatenation, method and
builtin-accessor probes, and instances of a class with class values, a method and properties
(replay.Valued), their class, and their __dict__.
"""

import random

# Site ids by kind name (engines.KINDS): a few of each, so site pairs repeat.
SITE_IDS = {"plain": range(1, 7), "attr": range(11, 15), "shape_read": (17, 18),
            "shape_write": (19, 20), "atomic_read": (21, 22), "atomic_write": (23, 24, 25),
            "item": range(30, 34), "item_delete": (35, 36), "slice": (37, 38),
            "contains": (39, 40), "iter": (41, 42), "eq": (43,), "call": (44, 45, 46),
            "global": (47, 48), "cell": (49, 50), "concat": (53, 54)}
SITES = {site: kind for kind, ids in SITE_IDS.items() if kind != "plain" for site in ids}
REENTRANT, INNER = 1, 2  # lock event flags (runtime/_locks_api.h)
NAMES = ("a", "b", "c")
DICT_KEYS = ("a", "b", "new", 1, 1.0, True, ["t", 1], ["t", ["u", 2.5]])
INDICES = (0, 1, 2, -1, 7, 20, 35)
SLICES = ([0, 2, None], [None, None, None], [1, None, -1], [0, "x", None], [5, 37, None],
          [0, 40, 3], [16, 32, None])
DICTS = ("dict", "ordereddict", "defaultdict", "dictsub")
SEQUENCES = ("list", "listsub", "deque", "bytearray", "longlist")
# What an instance of replay.Valued has: class values, a method, two properties, its own.
VALUED_NAMES = ("limit", "timeout", "run", "seen", "unseen", "a", "__dict__")
DATA_KINDS = ("instance", "instance", "slots", "class", "module", "cell", "int", "tuple",
              "ignored", "valued", "valued", *DICTS, *SEQUENCES, "set")
MAX_THREADS = 6  # a write then races with at most 6 earlier accesses (C keeps 8 per access)


def random_trace(seed):
    """One trace; the same seed always gives the same trace."""
    return _Gen(seed).trace()


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

    def site(self, kind):
        return self.rng.choice(SITE_IDS[kind])

    def trace(self):
        rng = self.rng
        threads = rng.randint(2, MAX_THREADS)
        self.data = [self.new(rng.choice(DATA_KINDS)) for _ in range(rng.randint(3, 8))]
        self.data += [self.new(f"{view}_of:{i}") for i in list(self.data)
                      if self.objects[i] == "dict" for view in ("keys", "values")]
        self.data += [self.new(f"dict_of:{i}") for i in list(self.data)
                      if self.objects[i] == "valued"]
        self.data.append(self.new("valued_class"))
        self.key = self.new("key")  # a dict key compared by identity
        self.locks = [self.new(rng.choice(("lock", "plainlock"))) for _ in range(rng.randint(1, 4))]
        self.flags = {lock: (REENTRANT if self.objects[lock] == "lock" else 0)
                      | (INNER if rng.random() < 0.25 else 0) for lock in self.locks}
        self.shared = [self.new("instance"), self.new("list"), self.new("int")]  # edge tokens
        self.start = [self.new("instance") for _ in range(threads)]
        self.end = [self.new("instance") for _ in range(threads)]
        self.state = ["running"] + ["new"] * (threads - 1)
        self.held = {}  # lock -> [owner thread, count]
        self.joinable = []
        for _ in range(rng.randint(20, 90)):
            self.step()
        return {"threads": threads, "objects": self.objects, "sites": SITES,
                "history_full": rng.random() < 0.25, "events": self.events}

    def step(self):
        rng = self.rng
        waiting = [t for t, s in enumerate(self.state) if s == "new"]
        if waiting and rng.random() < 0.25:
            t = rng.choice(waiting)
            self.state[t] = "running"
            if rng.random() < 0.8:  # a modelled start
                self.emit(0, "happens_before", self.start[t])
                self.emit(t, "happens_after", self.start[t])
            else:  # an unseen one; the thread still has an id from its first event on
                self.emit(t, "current_tid")
            return
        if self.joinable and rng.random() < 0.1:
            t = self.joinable.pop(rng.randrange(len(self.joinable)))
            self.emit(0, "happens_after", self.end[t])
            return
        t = rng.choice([t for t, s in enumerate(self.state) if s == "running"])
        roll = rng.random()
        if roll < 0.6:
            self.access(t, rng.choice(self.data))
        elif roll < 0.72:
            free = [lock for lock in self.locks if lock not in self.held
                    or self.held[lock][0] == t and self.flags[lock] & REENTRANT]
            if free:
                lock = rng.choice(free)
                count = rng.randint(2, 3) if lock not in self.held and \
                    self.flags[lock] & REENTRANT and rng.random() < 0.2 else 1  # a restore
                self.held.setdefault(lock, [t, 0])[1] += count
                self.emit(t, "lock_acquired", lock, self.flags[lock], count)
        elif roll < 0.84:
            mine = [lock for lock, (owner, _) in self.held.items() if owner == t]
            theirs = [lock for lock, (owner, _) in self.held.items()
                      if owner != t and not self.flags[lock] & REENTRANT]
            if theirs and rng.random() < 0.15:  # a plain lock released as a signal
                lock = rng.choice(theirs)
                del self.held[lock]
                self.emit(t, "lock_released", lock, self.flags[lock], 1)
            elif mine:
                lock = rng.choice(mine)
                if self.flags[lock] & REENTRANT and rng.random() < 0.2:  # _release_save
                    del self.held[lock]
                    self.emit(t, "lock_released", lock, self.flags[lock], 0)
                else:
                    self.release(t, lock)
        elif roll < 0.96:
            self.emit(t, rng.choice(("happens_before", "happens_after")),
                      rng.choice(self.shared))
        elif t != 0:
            for lock in [lock for lock, (owner, _) in self.held.items() if owner == t]:
                while lock in self.held:
                    self.release(t, lock)
            self.emit(t, "thread_end", self.end[t])
            self.state[t] = "ended"
            if rng.random() < 0.7:
                self.joinable.append(t)

    def release(self, t, lock):
        self.held[lock][1] -= 1
        if self.held[lock][1] == 0:
            del self.held[lock]
        self.emit(t, "lock_released", lock, self.flags[lock], 1)

    def probe(self, t, op, obj, key, kind):
        self.emit(t, op, obj, key, self.site(kind))

    def access(self, t, obj):
        rng = self.rng
        kind = self.objects[obj]
        rw = rng.choice(("read", "write"))
        container = kind in DICTS or kind in SEQUENCES or kind == "set"
        if container and rng.random() < 0.3:
            kind = rng.choice(("shape_read", "shape_write", "atomic_read", "atomic_write"))
            self.probe(t, "write" if kind.endswith("write") else "read", obj, None, kind)
        elif container and rng.random() < 0.3:
            self.collection(t, obj)
        elif kind in DICTS:
            key = {"obj": self.key} if rng.random() < 0.25 else rng.choice(DICT_KEYS)
            choice = rng.choice(("item", "item", "item_delete", "contains"))
            self.probe(t, "read" if choice == "contains" else rw, obj, key, choice)
        elif kind in SEQUENCES and rng.random() < 0.15:
            other = rng.choice(self.data)
            self.probe(t, rw, obj, {"obj": other}, "concat")  # a + b, or a += b (a write)
        elif kind in SEQUENCES:
            if rng.random() < 0.25 and kind != "deque":
                self.probe(t, rw, obj, {"slice": rng.choice(SLICES)}, "slice")
            else:
                self.probe(t, rw, obj, rng.choice(INDICES), rng.choice(("item", "item_delete")))
        elif kind == "set" or kind.startswith(("keys_of:", "values_of:")):
            self.collection(t, obj)
        elif kind.startswith("dict_of:"):  # an instance's __dict__, once read as obj.__dict__
            key = rng.choice(VALUED_NAMES + (1,))
            choice = rng.choice(("item", "item", "item_delete", "contains"))
            self.probe(t, "read" if choice == "contains" else rw, obj, key, choice)
        elif kind in ("valued", "valued_class"):
            name = rng.choice(VALUED_NAMES)
            if rng.random() < 0.2:
                func = {"read": rng.choice(("getattr", "hasattr")), "write": "setattr"}[rw]
                self.emit(t, "call", func, obj, name, self.site("call"))
            else:
                self.probe(t, rw, obj, name, "attr")
        elif kind == "cell":
            self.probe(t, rw, obj, "n", "cell")
        elif kind == "module" and rng.random() < 0.4:
            self.emit(t, "global_" + rw, obj, rng.choice(NAMES), self.site("global"))
        elif rng.random() < 0.2:
            func = rng.choice(("getattr", "hasattr", "setattr", "delattr"))
            self.emit(t, "call", func, obj, rng.choice(NAMES + (3,)), self.site("call"))
        else:
            self.probe(t, rw, obj, rng.choice(NAMES), rng.choice(("attr", "plain")))

    def collection(self, t, obj):
        """A probe on a whole collection: membership, iteration, comparison, len()..."""
        rng = self.rng
        choice = rng.choice(("contains", "iter", "eq", "call"))
        if choice == "call":
            self.emit(t, "call", rng.choice(("len", "sorted", "list", "sum", "dict", "tuple")),
                      obj, None, self.site("call"))
        elif choice == "eq":
            self.probe(t, "read", obj, {"obj": rng.choice(self.data)}, "eq")
        else:
            self.probe(t, "read", obj, rng.choice(NAMES + (1,)), choice)
