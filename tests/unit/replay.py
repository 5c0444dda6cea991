"""Replay an event trace into an engine on real threads; the races it finds, engine-neutral.

A trace is JSON-able: `threads` (how many; 0 is the replaying thread), `objects` (the kind of
each object, see FACTORIES; `keys_of:I` / `values_of:I` is a view of dict I, `dict_of:I` the
__dict__ of object I), `sites` ({site: kind name} for sites that are not plain, see
engines.KINDS), `same_site` ({site: site}: two trace sites of one site of the program, named
by the second in races and events), `history_full`, and `events`, each
`[thread, op, *args]` with objects as indices:
`read|write OBJ KEY SITE` (a probe; the site's kind says what it is),
`global_read|global_write MODULE KEY SITE` (a probe from a function of that module),
`call FUNC OBJ KEY SITE` (FUNC a builtin's name), `lock_acquired|lock_released LOCK FLAGS
COUNT` (a lock's event, as the lock hooks report it), `happens_before|happens_after|thread_end
OBJ`, `current_tid`.
Keys are strings, numbers, booleans, null or lists (tuples); `{"shape": 1}` is a container's
shape, `{"items": 1}` a dict's values, `{"obj": I}` object I, `{"slice": [START, STOP, STEP]}`
a slice.
"""

import builtins
import collections
import sys
import threading
import types

from racewatch.runtime import locations, sitekinds
from tests.unit.engines import Driver, lock_addresses


class Plain:
    pass


class Slotted:
    __slots__ = ("a", "b", "c", "n", "x")  # no __weakref__


class Ignored:
    """Configured as an ignored type, like threading.local."""


class ListSub(list):
    """Keeps list's item access: a container."""


class OwnGetitem(dict):
    """Has its own __getitem__: seen through its own code, not as a container."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key)


def _instrumented(function):
    """`function`, its code marked as racewatch's (as if its module had been rewritten)."""
    code = function.__code__
    function.__code__ = code.replace(co_consts=code.co_consts + (sitekinds.MARKER,))
    return function


class Valued:
    """Class-level values (`timeout` shadowed by every instance with the very same object), a
    method, a property whose code racewatch instrumented (`seen`) and one it did not."""

    limit = 10
    timeout = None

    def __init__(self):
        self.timeout = None

    def run(self):
        pass

    @property
    @_instrumented
    def seen(self):
        return 0

    @seen.setter
    @_instrumented
    def seen(self, value):
        pass

    @property
    def unseen(self):
        return 0


def _module():
    module = types.ModuleType("replayed")
    exec("def probe(engine, op, key, site):\n"  # a global probe lands in its caller's globals
         "    (engine.write if op == 'write' else engine.read)(None, key, site)\n",
         module.__dict__)
    return module


FACTORIES = {
    "instance": Plain, "slots": Slotted, "class": lambda: type("Replayed", (), {}),
    "dict": lambda: {"a": 1, 1: 2}, "ordereddict": lambda: collections.OrderedDict(a=1),
    "defaultdict": lambda: collections.defaultdict(int, a=1), "dictsub": OwnGetitem,
    "list": lambda: [0, 1, 2], "listsub": lambda: ListSub([0, 1, 2]),
    "deque": lambda: collections.deque([0, 1, 2]), "bytearray": lambda: bytearray(3),
    "set": lambda: {1, "a"}, "module": _module, "cell": lambda: types.CellType(0),
    "int": lambda: int("9" * 30), "tuple": lambda: (object(),), "ignored": Ignored,
    "lock": threading.RLock, "plainlock": threading.Lock, "key": Plain, "valued": Valued,
    "valued_class": lambda: Valued, "longlist": lambda: list(range(40)),
}


def build(kinds):
    objects = []
    for kind in kinds:
        of, _, index = kind.partition("_of:")
        if index:
            source = objects[int(index)]
            objects.append(source.__dict__ if of == "dict" else getattr(source, of)())
        else:
            objects.append(FACTORIES[kind]())
    return objects


def decode_key(key, objects):
    if isinstance(key, str):
        return sys.intern(key)  # as a probe passes it: one object per name
    if isinstance(key, list):
        return tuple(decode_key(k, objects) for k in key)
    if isinstance(key, dict):
        if "shape" in key:
            return locations.SHAPE
        if "items" in key:
            return locations.ITEMS
        if "slice" in key:
            return slice(*key["slice"])
        return objects[key["obj"]]
    return key


def _step(engine, objects, op, args):
    """One event, on the thread running it (a probe calls the engine directly from here)."""
    if op in ("read", "write"):
        obj, key, site = args
        getattr(engine, op)(objects[obj], decode_key(key, objects), site)
    elif op.startswith("global_"):
        module, key, site = args
        objects[module].probe(engine, op[7:], sys.intern(key), site)
    elif op == "call":
        func, obj, key, site = args
        engine.call(getattr(builtins, func), objects[obj], decode_key(key, objects), site)
    elif op in ("lock_acquired", "lock_released"):
        lock, flags, count = args
        getattr(engine, op)(objects[lock], flags, count)
    elif op == "current_tid":
        engine.current_tid()
    else:
        getattr(engine, op)(objects[args[0]])


def replay(engine, trace):
    """(races by site pair, sorted normalized race events, lock-order events in order) of
    `trace` replayed into `engine`."""
    objects = build(trace["objects"])
    sites = {int(site): kind for site, kind in trace.get("sites", {}).items()}
    orders = []

    def lock_order(tid, held, wheres, lock, where):
        orders.append((tid, [(engine.sync_name(i)[1], w) for i, w in zip(held, wheres)],
                       engine.sync_name(lock)[1], where))

    with Driver(engine, threads=trace["threads"], sites=sites,
                history_full=trace.get("history_full", False),
                ignored_types=(Ignored,), lock_order=lock_order) as d:
        for thread, op, *args in trace["events"]:
            d.call(thread, _step, engine, objects, op, args)
        races = d.races()
    labels = {id(obj): index for index, obj in enumerate(objects)}
    labels.update((id(obj.__dict__), f"{index}.__dict__") for index, obj in enumerate(objects)
                  if isinstance(obj, types.ModuleType))
    same = {int(a): int(b) for a, b in trace.get("same_site", {}).items()}
    merged = {}
    for pair, n in races.items():
        pair = tuple(sorted(same.get(site, site) for site in pair))
        merged[pair] = merged.get(pair, 0) + n
    events = sorted((_normalize(engine, e, labels, same) for e in d.events), key=repr)
    orders = [(tid, tuple(sorted((labels.get(a, "?"), w) for a, w in held)),
               labels.get(lock, "?"), where) for tid, held, lock, where in orders]
    return merged, events, orders


def _normalize(engine, event, labels, same):
    """An event with objects and locks as trace indices, comparable across engines."""
    def locks(lockset):
        return tuple(sorted(labels.get(a, "?") for a in lock_addresses(engine, lockset)))

    key = event.key
    if type(key) is locations.Identity:  # the Python twin's wrapper of a by-identity key
        key = key.obj
    if key is locations.SHAPE:
        key = "<shape>"
    elif key is locations.ITEMS:
        key = "<items>"
    elif not isinstance(key, (str, int, float, tuple, type(None))):
        key = f"<obj {labels.get(id(key), '?')}>"
    stack = None
    if event.prev_stack is not None:
        stack = tuple((code.co_qualname, line) for code, line in event.prev_stack)
    return (labels.get(id(event.target), "?"), key, same.get(event.site, event.site), event.tid,
            bool(event.is_write), event.atomic, locks(event.lockset),
            same.get(event.prev_site, event.prev_site),
            event.prev_tid, bool(event.prev_write), event.prev_atomic,
            locks(event.prev_lockset), stack)
