"""Replay an event trace into an engine on real threads; the races it finds, engine-neutral.

A trace is JSON-able: `threads` (how many; 0 is the replaying thread), `objects` (the kind
of each object, see FACTORIES; `dict_of:I` is the `__dict__` of module I), `sites` ({site:
kind name} for sites that are not plain, see engines.KINDS), `history_full`, and `events`,
each `[thread, op, *args]` with objects as indices:
`read|write OBJ KEY SITE`, `shape_read|shape_write|atomic_read|atomic_write OBJ SITE`,
`acquire|release OBJ SITE`, `happens_before|happens_after|thread_end OBJ`, `current_tid`.
Keys are strings, ints or null; `{"shape": 1}` is a container's shape, `{"obj": I}` object I.
"""

import collections
import sys
import threading
import types

from racewatch.runtime import locations
from tests.unit.engines import Driver, access, lock_addresses


class Plain:
    pass


class Slotted:
    __slots__ = ("a", "b", "c", "x")  # no __weakref__


class Ignored:
    """Configured as an ignored type, like threading.local."""


FACTORIES = {
    "instance": Plain, "slots": Slotted, "class": lambda: type("Replayed", (), {}),
    "list": list, "dict": dict, "set": set, "deque": collections.deque,
    "bytearray": bytearray, "module": lambda: types.ModuleType("replayed"),
    "int": lambda: int("9" * 30), "tuple": lambda: (object(),), "ignored": Ignored,
    "lock": threading.RLock, "key": object,
}


def build(kinds):
    objects = []
    for kind in kinds:
        if kind.startswith("dict_of:"):
            objects.append(objects[int(kind[8:])].__dict__)
        else:
            objects.append(FACTORIES[kind]())
    return objects


def decode_key(key, objects):
    if isinstance(key, str):
        return sys.intern(key)  # as a probe passes it: one object per name
    if isinstance(key, dict):
        return locations.SHAPE if "shape" in key else objects[key["obj"]]
    return key


def _step(engine, objects, op, args):
    """One event, on the thread running it (a probe calls the engine directly from here)."""
    if op in ("read", "write"):
        obj, key, site = args
        access(engine, op, objects[obj], decode_key(key, objects), site)
    elif op.startswith(("shape_", "atomic_")):
        obj, site = args
        access(engine, op, objects[obj], None, site)
    elif op in ("acquire", "release"):
        getattr(engine, op)(objects[args[0]], args[1])
    elif op == "current_tid":
        engine.current_tid()
    else:
        getattr(engine, op)(objects[args[0]])


def replay(engine, trace):
    """(races by site pair, sorted normalized race events) of `trace` replayed into `engine`."""
    objects = build(trace["objects"])
    sites = {int(site): kind for site, kind in trace.get("sites", {}).items()}
    with Driver(engine, threads=trace["threads"], sites=sites,
                history_full=trace.get("history_full", False),
                ignored_types=(Ignored,)) as d:
        for thread, op, *args in trace["events"]:
            d.call(thread, _step, engine, objects, op, args)
        races = d.races()
    labels = {id(obj): index for index, obj in enumerate(objects)}
    events = sorted((_normalize(engine, e, labels) for e in d.events), key=repr)
    return races, events


def _normalize(engine, event, labels):
    """An event with objects as trace indices and locks as indices, comparable across engines."""
    def locks(lockset):
        return tuple(sorted(labels.get(a, "?") for a in lock_addresses(engine, lockset)))

    key = "<shape>" if event.key is locations.SHAPE else event.key
    key = key if isinstance(key, (str, int, type(None))) else f"<obj {labels.get(id(key))}>"
    stack = None
    if event.prev_stack is not None:
        stack = tuple((code.co_qualname, line) for code, line in event.prev_stack)
    return (labels.get(id(event.target), "?"), key, event.site, event.tid,
            bool(event.is_write), event.atomic, locks(event.lockset), event.prev_site,
            event.prev_tid, bool(event.prev_write), event.prev_atomic,
            locks(event.prev_lockset), stack)
