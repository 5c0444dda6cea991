"""THE hot path, pure-Python twin of the C runtime (`fast/`): FastTrack over the probes' events.

Same functions, same semantics as the C runtime; kept for clarity and as the oracle the C
runtime is tested against. Its own state is guarded by one raw lock; a per-thread `busy` flag
defers events that arrive re-entrantly (a finalizer or weakref callback running inside an
update), so re-entry neither deadlocks nor corrupts state.
"""

import _thread
import sys
from types import ModuleType

from racewatch.runtime import locations, shadow
from racewatch.runtime.clock import CLOCK_SHIFT, TID_MASK, join

_lock = _thread.allocate_lock()
_HEAPTYPE = 1 << 9

_local = _thread._local()  # .state: the calling OS thread's ThreadState (dies with the thread)
_threads = []    # tid -> ThreadState
_objects = shadow.LifetimeTable()
_syncs = shadow.LifetimeTable()
_lock_ids = [None]  # lock id (M<id>, from 1) -> (type, address) of the lock
_reported = {}    # (site, site) -> number of times the pair raced
_site_kinds = bytearray(1)
_accessors = {}   # id(builtin) -> (builtin, is_write, how): see locations.ACCESSORS
_config = {"on_race": None, "history_full": False, "ignored_types": (), "proxy_types": {},
           "lock_order": None}


class ThreadState:
    __slots__ = ("tid", "vc", "epoch", "held", "held_site", "lockset", "order_seen", "busy",
                 "pending")

    def __init__(self, tid):
        self.tid = tid
        self.vc = [0] * tid + [1]
        self.epoch = 1 << CLOCK_SHIFT | tid << 1
        self.held = {}       # sync id -> re-entry count
        self.held_site = {}  # sync id -> probe site of its outermost acquisition
        self.lockset = ()    # sorted sync ids of the locks held
        self.order_seen = set()  # (lockset, lock) this thread already told the lock-order graph
        self.busy = False
        self.pending = []

    def tick(self):
        self.vc[self.tid] += 1
        self.epoch = self.vc[self.tid] << CLOCK_SHIFT | self.tid << 1


class SyncVar:
    __slots__ = ("ref", "vc", "id", "__weakref__")

    def __init__(self, ref):
        self.ref = ref
        self.vc = []
        self.id = 0  # a number once held as a lock


def _current():
    # A thread-local, not a table by thread ident: idents are reused by later threads, and a
    # thread's own finalizers may still run after it announced its end.
    state = getattr(_local, "state", None)
    if state is None:
        with _lock:
            state = ThreadState(len(_threads))
            _threads.append(state)
        _local.state = state
    return state


# -- configuration (not hot) -------------------------------------------------------------------

def configure(on_race=None, history_full=False, ignored_types=(), proxy_types=None,
              lock_order=None, **_c_only):
    """`on_race(event)` is called, outside the runtime's lock, once per new racing site pair;
    `lock_order(tid, held, held_sites, lock, site)` once per new (held set, lock) of a thread
    taking a lock while holding others (lockorder.Graph.on_edges).
    (The C runtime takes the tables of locations.py as arguments; this twin imports them.)"""
    _config.update(on_race=on_race, history_full=history_full, lock_order=lock_order,
                   ignored_types=tuple(ignored_types), proxy_types=dict(proxy_types or {}))
    _accessors.clear()
    _accessors.update((id(f), (f, w, how)) for f, (w, how) in locations.ACCESSORS.items())


def register_sites(base, kinds):
    """Site kinds (sitekinds.py) for ids base, base+1, ...: one byte per site."""
    with _lock:
        if len(_site_kinds) < base:
            _site_kinds.extend(bytes(base - len(_site_kinds)))
        _site_kinds[base:base + len(kinds)] = kinds


def current_tid():
    return _current().tid


def races():
    """{(site_a, site_b): times raced} for every racing site pair seen so far."""
    with _lock:
        return dict(_reported)


def sync_name(lock_id):
    """(type, address) of lock M<lock_id>, or None."""
    return _lock_ids[lock_id] if 0 < lock_id < len(_lock_ids) else None


def reset_after_fork():
    """In a fork child: only the forking thread survives; start over with it as thread 0."""
    global _lock
    _lock = _thread.allocate_lock()
    _local.state = None
    _threads.clear()
    _objects.clear()
    _syncs.clear()
    _reported.clear()
    _current()


# -- accesses ----------------------------------------------------------------------------------

def read(obj, key, site):
    _probe(obj, key, site, False)


def write(obj, key, site):
    _probe(obj, key, site, True)


class Token:
    """The constant of a token probe site: `obj in token` is an access of obj's location
    token.key, `~token` of the running code's global token.key, `token[key] = obj` of obj
    with a key from the stack (see the C runtime's Token)."""

    __slots__ = ("site", "is_write", "key")

    def __init__(self, site, is_write, key):
        self.site, self.is_write, self.key = site, is_write, key

    # each calls _probe directly: it finds the accessing frame two frames up
    def __contains__(self, obj):
        if _enabled:
            _probe(obj, self.key, self.site, self.is_write)
        return False

    def __invert__(self):
        if _enabled:
            _probe(None, self.key, self.site, self.is_write)

    def __setitem__(self, key, obj):
        if _enabled:
            _probe(obj, key, self.site, self.is_write)

    def __reduce__(self):
        from racewatch.runtime import null
        return null.Token, ()   # a site id means nothing in another process

    def __repr__(self):
        return f"<racewatch probe {self.site}>"


class LineToken(Token):
    """A token that also counts the run of its line first (a merged probe: rewriter/merge.py),
    through the line's hit token, whether or not race detection is on."""

    __slots__ = ("hit",)

    def __init__(self, site, is_write, key, hit):
        super().__init__(site, is_write, key)
        self.hit = hit

    # _probe finds the accessing frame two frames up: each calls it directly, as Token's do
    def __contains__(self, obj):
        ~self.hit
        if _enabled:
            _probe(obj, self.key, self.site, self.is_write)
        return False

    def __invert__(self):
        ~self.hit
        if _enabled:
            _probe(None, self.key, self.site, self.is_write)

    def __setitem__(self, key, obj):
        ~self.hit
        if _enabled:
            _probe(obj, key, self.site, self.is_write)


_enabled = True


def token(site, is_write, key, hit=None):
    return Token(site, is_write, key) if hit is None else LineToken(site, is_write, key, hit)


def enable(flag):
    """Token probes record (True) or do nothing (False: racewatch stopped)."""
    global _enabled
    _enabled = bool(flag)


def call(func, arg0, arg1, site):
    """A call site: if `func` is a builtin accessor (len, getattr, ...), record its access."""
    action = _accessors.get(id(func))
    if action is not None and func is action[0]:
        _probe(arg0, arg1, site, action[1], action[2])


def _probe(obj, key, site, is_write, how=None):
    state = _current()
    if state.busy:  # re-entered from a finalizer or callback inside an update: do it later
        state.pending.append((_probe, (obj, key, site, is_write, how)))
        return
    state.busy = True
    results = []
    try:
        for location in locations.resolve(obj, key, _site_kinds[site] if site < len(_site_kinds)
                                          else 0, is_write, how, sys._getframe(2)):
            outcome = _record_access(*location, site, state)
            if outcome is not None:
                results.append(outcome)
    finally:
        state.busy = False
    on_race = _config["on_race"]
    for target, key, events, released in results:
        del released  # finalizers of swept objects run here, outside the lock
        if events and on_race is not None:
            for event in events:
                _report(on_race, (target, key) + event)
    if state.pending:
        _drain(state)


def _record_access(target, key, is_write, atomic, site, state):
    with _lock:
        shadow.forget_dead(_objects, _syncs)  # before any lookup: an address may be reused
    record = _objects.get(target)
    if record is None:
        ignore = issubclass(type(target), _config["ignored_types"])  # not obj.__class__
        record = _objects.insert(*_objects.create(target, lambda ref: shadow.Record(ref, ignore)))
    if record.ignore:
        return None
    stack = _capture_stack() if _config["history_full"] else None
    released = None
    with _lock:
        if _objects.sweep_due():
            released = _objects.sweep()
        events = _check(record, key, state, site, is_write, atomic, stack)
    return target, key, events, released


def _report(callback, *args):
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - like C's PyErr_WriteUnraisable: never into the program
        import traceback
        sys.stderr.write(f"Exception ignored in: {callback!r}\n{traceback.format_exc()}")


def _drain(state):
    while state.pending and not state.busy:
        fn, args = state.pending.pop(0)
        fn(*args)


def _ordered(e, vc):
    tid = (e >> 1) & TID_MASK
    return (e >> CLOCK_SHIFT) <= (vc[tid] if tid < len(vc) else 0)


def _conflicts(prev, atomic, vc):
    """An earlier access races with this one: unordered, and not both atomic."""
    return not (atomic and prev.epoch & 1) and not _ordered(prev.epoch, vc)


def _check(record, key, state, site, is_write, atomic, stack):
    """FastTrack's read/write rules on one location; returns the new race events."""
    cells = record.cells
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = shadow.Cell()
    now = state.epoch | atomic
    vc = state.vc
    found = []
    if is_write:
        last = cell.write
        seen = _seen(last, now, atomic, site, cell.raced)
        if seen:  # same epoch: nothing new to learn, but maybe a later site
            if seen is _ELSEWHERE:
                cell.write = shadow.Access(now, site, state.lockset, stack)
            return None
        if last is not None and _conflicts(last, atomic, vc):
            found.append((True, last))
        if cell.shared is not None:
            found.extend((False, r) for _, r in sorted(cell.shared.items())  # by tid, as C
                         if _conflicts(r, atomic, vc))
        elif cell.read is not None and _conflicts(cell.read, atomic, vc):
            found.append((False, cell.read))
        cell.write = shadow.Access(now, site, state.lockset, stack)
        cell.read = None
        cell.shared = None
    else:
        last = cell.read
        if cell.shared is not None:
            last = cell.shared.get(state.tid)
        seen = _seen(last, now, atomic, site, cell.raced)
        if seen:
            if seen is _ELSEWHERE:
                access = shadow.Access(now, site, state.lockset, stack)
                if cell.shared is not None:
                    cell.shared[state.tid] = access
                else:
                    cell.read = access
            return None
        if cell.write is not None and _conflicts(cell.write, atomic, vc):
            found.append((True, cell.write))
        access = shadow.Access(now, site, state.lockset, stack)
        if cell.shared is not None:
            cell.shared[state.tid] = access
        elif cell.read is None or _ordered(cell.read.epoch, vc):
            cell.read = access
        else:
            prev = cell.read
            cell.shared = {(prev.epoch >> 1) & TID_MASK: prev, state.tid: access}
            cell.read = None
    if found:
        cell.raced = True
    return _new_events(found, site, state, is_write, atomic)


_ELSEWHERE = 2  # _seen: the same access from another site


def _seen(last, now, atomic, site, raced):
    """FastTrack's same-epoch rule: this thread already did such an access in this epoch
    (plain covers atomic): True, or _ELSEWHERE when the same access came from another site,
    which becomes the latest (a report names the line whose value the other thread may see).
    On a location known to race, only at the same site: a second site racing with the same
    access is a pair of its own to report."""
    if last is None:
        return False
    if last.epoch == now:
        return True if last.site == site else False if raced else _ELSEWHERE
    return atomic and last.epoch | 1 == now and (not raced or last.site == site)


def _new_events(found, site, state, is_write, atomic):
    events = []
    for prev_write, prev in found:
        pair = (prev.site, site) if prev.site <= site else (site, prev.site)
        count = _reported.get(pair, 0)
        _reported[pair] = count + 1
        if count == 0:
            events.append((site, state.tid, is_write, atomic, state.lockset,
                           prev.site, (prev.epoch >> 1) & TID_MASK, prev_write,
                           prev.epoch & 1, prev.lockset, prev.stack))
    return events


def _capture_stack():
    """The stack of the access being recorded, as (code, line) pairs, innermost first."""
    frames = []
    frame = sys._getframe(4)  # skip _capture_stack < _record_access < _probe < read/write
    while frame is not None:
        frames.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return tuple(frames)


# -- synchronization ---------------------------------------------------------------------------

def _sync_var(obj, is_lock):
    released = None
    with _lock:
        shadow.forget_dead(_objects, _syncs)
        if _syncs.sweep_due():
            released = _syncs.sweep()
    del released  # outside the lock: dropping them may run finalizers
    var = _syncs.get(obj)
    if var is None:
        var = _syncs.insert(*_syncs.create(obj, SyncVar))
    if is_lock and not var.id:
        with _lock:
            if not var.id:
                var.id = len(_lock_ids)
                _lock_ids.append((type(obj), id(obj)))
    return var


def acquire(sync, site):
    """A lock was acquired: its last release happens-before what this thread does next."""
    _sync_event(sync, True, True, site)


def release(sync, site):
    """A lock is being released: what this thread did happens-before its next acquire."""
    _sync_event(sync, False, True, site)


def happens_after(obj):
    """Annotation / interceptor edge: the releases on `obj` happen-before what follows."""
    _sync_event(obj, True, False)


def happens_before(obj):
    """Annotation / interceptor edge: what came before happens-before acquires on `obj`."""
    _sync_event(obj, False, False)


def _sync_event(obj, is_acquire, is_lock, site=0):
    state = _current()
    if state.busy:
        state.pending.append((_sync_event, (obj, is_acquire, is_lock, site)))
        return
    state.busy = True
    order = None
    try:
        var = _sync_var(obj, is_lock)
        with _lock:
            if is_acquire:
                join(state.vc, var.vc)
            else:
                join(var.vc, state.vc)
            state.tick()
            if is_lock:
                order = _new_order(state, var.id, site) if is_acquire else None
                _update_lockset(state, var.id, 1 if is_acquire else -1, site)
    finally:
        state.busy = False
    if order is not None:  # outside the lock: the graph captures stacks and may report
        _report(_config["lock_order"], state.tid, *order)
    if state.pending:
        _drain(state)


def _new_order(state, sync_id, site):
    """(held, held sites, lock, site) when taking `sync_id` while holding other locks in a
    combination this thread has not shown the lock-order graph yet; else None. Re-entering a
    lock already held adds no edge."""
    if not state.held or sync_id in state.held or _config["lock_order"] is None:
        return None
    key = (state.lockset, sync_id)
    if key in state.order_seen:
        return None
    state.order_seen.add(key)
    return state.lockset, tuple(state.held_site[i] for i in state.lockset), sync_id, site


def _update_lockset(state, sync_id, delta, site=0):
    held = state.held
    count = held.get(sync_id, 0) + delta
    if count > 0:
        held[sync_id] = count
        state.held_site.setdefault(sync_id, site)
    else:
        held.pop(sync_id, None)
        state.held_site.pop(sync_id, None)
    state.lockset = tuple(sorted(held))


def thread_end(obj):
    """The calling thread is finishing: publish its clock on `obj` (its Thread) for join()."""
    happens_before(obj)


def sync(obj, site):
    """`obj` itself, or a proxy recording acquire/release when `obj` is a lock."""
    target = _config["proxy_types"].get(type(obj), False)
    if target is False:
        return obj
    return SyncProxy(obj, target(obj) if target else obj, site)


class SyncProxy:
    """Stands in for a lock at an instrumented `with x:` / `x.acquire()` / `x.release()`."""

    __slots__ = ("_obj", "_target", "_site")

    def __init__(self, obj, target, site):
        self._obj = obj
        self._target = target
        self._site = site

    def acquire(self, *args, **kwargs):
        got = self._obj.acquire(*args, **kwargs)
        if got:
            acquire(self._target, self._site)
        return got

    def release(self):
        release(self._target, self._site)  # before: a switch after it could let a waiter in
        return self._obj.release()

    def __enter__(self):
        result = self._obj.__enter__()
        acquire(self._target, self._site)
        return result

    def __exit__(self, *exc):
        release(self._target, self._site)
        return self._obj.__exit__(*exc)
