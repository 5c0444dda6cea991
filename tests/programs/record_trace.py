"""Record the engine events of a real program as a replayable trace (tests/unit/replay.py).

    python tests/programs/record_trace.py fixtures/race_lock_one_side.py \
        tests/unit/traces/race_lock_one_side.json

Runs the program under `racewatch run --runtime=python` and records what reaches the Python
twin's shadow and clocks: each access as the location the twin resolved it to (so replay needs
no modules, frames or super() objects: a probe of the owner and key at a site of kind `plain`,
or `atomic` for an atomic access) and each sync event. One site of the program that makes both
plain and atomic accesses (a new key `d[k] = v`: its key plainly, the dict's shape atomically)
becomes two trace sites, the second named in `same_site`. Objects become stable indices
(kept alive meanwhile, so an index never changes meaning), threads indices in order of their
first event, sites compact ids. The race pairs the twin found are saved too: a faithful replay
finds the same.
"""

import _thread
import json
import os
import sys
import threading
import weakref

from racewatch import cli
from racewatch.runtime import api, locations, owned


class Recorder:
    def __init__(self):
        self.lock = owned.rlock()  # record + apply as one step; a finalizer may re-enter
        self.local = threading.local()
        self.events = []
        self.objects = []  # the recorded objects themselves, kept alive
        self.kinds = []
        self.index = {}    # id(object) -> index
        self.threads = {}  # thread ident -> index, while the thread runs
        self.nthreads = 0
        self.sites = {}    # (real site id, atomic) -> trace site id
        self.same_site = {}  # trace site id -> the trace site id of the same real site

    def thread(self):
        ident = _thread.get_ident()
        if ident not in self.threads:
            self.threads[ident] = self.nthreads
            self.nthreads += 1
        return self.threads[ident]

    def obj(self, obj, sync=False):
        index = self.index.get(id(obj))
        if index is None:
            index = self.index[id(obj)] = len(self.objects)
            self.objects.append(obj)
            self.kinds.append(_kind(obj, sync))
        return index

    def key(self, key):
        if key is locations.SHAPE:
            return {"shape": 1}
        if key is locations.ITEMS:
            return {"items": 1}
        if type(key) is locations.Identity:
            return {"obj": self.obj(key.obj)}
        if type(key) in (str, int, type(None)):
            return key
        raise ValueError(f"a key replay cannot express: {key!r}")

    def site(self, site, atomic):
        """The trace's id of a real site's plain or atomic accesses (a trace site has one kind)."""
        new = self.sites.get((site, atomic))
        if new is None:
            new = self.sites[site, atomic] = len(self.sites) + 1
            other = self.sites.get((site, not atomic))
            if other is not None:
                self.same_site[new] = other
        return new

    def canonical(self, site):
        """The trace id race pairs name a real site by: its first one."""
        ids = [self.sites[site, a] for a in (False, True) if (site, a) in self.sites]
        return min(ids) if ids else 0

    def record(self, *event):
        self.events.append([self.thread(), *event])

    def install(self):
        """Wrap the twin's internal steps (looked up as module globals at each call)."""
        record_access, sync_event, lock_event, thread_end = (
            api._record_access, api._sync_event, api._lock_event, api.thread_end)

        def recorded_access(target, key, is_write, atomic, site, state):
            with self.lock:
                self.record("write" if is_write else "read", self.obj(target), self.key(key),
                            self.site(site, bool(atomic)))
                return record_access(target, key, is_write, atomic, site, state)

        def recorded_sync(obj, is_acquire):
            with self.lock:
                if not api._current().busy:  # a busy twin defers it, to this wrapper again
                    op = "happens_after" if is_acquire else "happens_before"
                    if getattr(self.local, "ending", False):
                        op = "thread_end"
                    self.record(op, self.obj(obj, sync=True))
                return sync_event(obj, is_acquire)

        def recorded_lock(lock, is_acquire, flags, count, where):
            with self.lock:
                if not api._current().busy:
                    self.record("lock_acquired" if is_acquire else "lock_released",
                                self.obj(lock, sync=True), flags, count)
                return lock_event(lock, is_acquire, flags, count, where)

        def recorded_thread_end(obj):
            self.local.ending = True
            try:
                thread_end(obj)
            finally:
                self.local.ending = False
            with self.lock:
                self.threads.pop(_thread.get_ident(), None)  # the twin forgets it too

        api._record_access = recorded_access
        api._sync_event = recorded_sync
        api._lock_event = recorded_lock
        api.thread_end = recorded_thread_end

    def trace(self, source):
        races = sorted((self.canonical(a), self.canonical(b), n)
                       for (a, b), n in api.races().items())
        return {"source": source, "threads": self.nthreads, "objects": self.kinds,
                "sites": {new: "atomic" for (_, atomic), new in self.sites.items() if atomic},
                "same_site": self.same_site, "history_full": False, "events": self.events,
                "races": [[min(a, b), max(a, b), n] for a, b, n in races]}


def _kind(obj, sync):
    """The replay kind of an object: what the engines treat differently."""
    if sync and type(obj) is type(_thread.RLock()):
        return "lock"
    if sync and type(obj) is type(_thread.allocate_lock()):
        return "plainlock"
    if isinstance(obj, threading.local):
        return "ignored"
    if isinstance(obj, type):
        return "class"
    container = locations.container_kind(obj)
    if container is not None:
        return container
    try:
        weakref.ref(obj)
    except TypeError:
        return "slots"
    return "instance"


def main(program, out):
    recorder = Recorder()
    recorder.install()
    status = cli.main(["run", "--runtime=python", program])
    source = os.path.relpath(os.path.abspath(program), os.getcwd())
    with open(out, "w", encoding="utf-8") as f:
        json.dump(recorder.trace(source), f, separators=(",", ":"))
        f.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
