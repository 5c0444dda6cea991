"""Both engines as test parameters, each reset to a known state and driven on real threads."""

import collections
import re
import threading

import pytest

from racewatch.runtime import api, locations, sitekinds
from tests.unit.stepper import Stepper

try:
    from racewatch.runtime import _fast
except ImportError:  # not built: the C parameters fail loudly instead of vanishing
    _fast = None

# Site ids the tests use stay below this; every reset clears their kinds.
SITE_SPACE = 4096

REENTRANT, INNER = 1, 2  # lock event flags (runtime/_locks_api.h)
RLOCK = type(threading.RLock())

# The fields of an `on_race` event, in order (see the runtime's `configure`).
Event = collections.namedtuple("Event", "target key site tid is_write atomic lockset prev_site "
                               "prev_tid prev_write prev_atomic prev_lockset prev_stack")


def engines(c_bug=None, python_bug=None):
    """`engine` parameters for both engines; a known bug of one is a strict xfail there."""
    marks = {"python": python_bug, "c": c_bug}
    return [pytest.param(engine, id=name,
                         marks=[pytest.mark.xfail(strict=True, reason=marks[name])]
                         if marks[name] else [])
            for name, engine in (("python", api), ("c", _fast))]


ENGINES = engines()


# What tests call the sites they use: the kinds of sitekinds.py, and names for the method
# kinds on containers (their shape, plainly or atomically).
KINDS = {name.lower(): value for name, value in vars(sitekinds).items()
         if name.isupper() and isinstance(value, int)}
KINDS.update(plain=sitekinds.NONE, shape_read=sitekinds.METHOD_READ,
             shape_write=sitekinds.METHOD_WRITE, atomic_read=sitekinds.METHOD_ATOMIC_READ,
             atomic_write=sitekinds.METHOD_ATOMIC_WRITE)


def site_bytes(sites):
    """The registration bytes for `{site: kind name}`."""
    table = bytearray(SITE_SPACE)
    for site, kind in (sites or {}).items():
        table[site] = KINDS[kind]
    return bytes(table)


def reset(engine, sites=None, **config):
    """Forget everything (the caller becomes thread 0), then configure and register sites."""
    assert engine is not None, "the C runtime is not built"
    # Interceptors patch threading.Thread; a test that left them installed would add events.
    assert threading.Thread.start.__module__ == "threading", "racewatch interceptors installed"
    # As the session configures it (the C engine takes the location tables as arguments).
    config.setdefault("shape", locations.SHAPE)
    config.setdefault("items", locations.ITEMS)
    config.setdefault("accessors", locations.ACCESSORS)
    config.setdefault("deque_type", collections.deque)
    config.setdefault("defaultdict_type", collections.defaultdict)
    engine.configure(**config)
    engine.reset_after_fork()
    engine.register_sites(0, site_bytes(sites))


def lock_addresses(engine, lockset):
    """The addresses of the locks in a lockset, as `id()`s (sync ids differ by engine)."""
    found = []
    for sync_id in lockset:
        described = engine.sync_name(sync_id)  # (type, address) or None
        found.append(described[1] if described else None)
    return tuple(sorted(found, key=lambda a: (a is None, a)))


def table_sizes(engine):
    """(shadow records, sync vars) the engine holds now."""
    if engine is api:
        return len(api._objects.records), len(api._syncs.records)
    stats = engine.stats()
    return stats["objects"], stats["syncs"]


class Driver:
    """An engine reset for one test, with `threads` real threads to call it from.

    `driver(t, "write", obj, key, site)` calls the engine's function on thread t (container
    operations `shape_read`, `atomic_write`... take `(box, site)`; `acquire` and `release`
    take `(lock, count=1)` and report the lock's event as the lock hooks would, `inner=True`
    for a modelled primitive's lock); `driver.call(t, fn, *args)` runs any function there.
    `sites` names the kind of the sites that are not plain. Race events collect in `events`.
    """

    def __init__(self, engine, threads=2, sites=None, **config):
        self.engine = engine
        self.events = []
        config.setdefault("on_race", lambda event: self.events.append(Event(*event)))
        reset(engine, sites, **config)
        self.stepper = Stepper(threads)

    def __call__(self, thread, function, *args, inner=False):
        if function in ("acquire", "release"):  # a lock's own event (runtime/_locks.c)
            lock, count = (*args, 1)[:2]
            flags = (REENTRANT if isinstance(lock, RLOCK) else 0) | (INNER if inner else 0)
            event = self.engine.lock_acquired if function == "acquire" else self.engine.lock_released
            return self.stepper(thread, event, lock, flags, count)
        if function.startswith(("shape_", "atomic_")):  # a container method's probe
            box, site = args
            probe = self.engine.write if function.endswith("write") else self.engine.read
            return self.stepper(thread, probe, box, None, site)
        return self.stepper(thread, getattr(self.engine, function), *args)

    def call(self, thread, fn, *args):
        return self.stepper(thread, fn, *args)

    def races(self):
        return self.engine.races()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stepper.close()
        self.engine.configure()  # drop the test's on_race
