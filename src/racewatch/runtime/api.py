"""THE hot path, pure-Python twin of the C runtime (`fast/`): FastTrack over the probes' events.

Same functions, same semantics as the C runtime; kept for clarity and as the oracle the C
runtime is tested against. Its own state is guarded by one reentrant lock (guard.py), with or
without a GIL, under which no collection runs. An event that arrives while its thread is in
the middle of another (a finalizer or a weakref callback run inside an update) is recorded at
once, as the C runtime does: recording it later would put it after other threads' events
that really came after it (two accesses under one lock would then race). So updates never
iterate what a nested event may change (read sets are replaced, not changed in place), and a
nested event may at worst hide the same thread's outer access to the same location: never a
false report.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import sys
from types import ModuleType

from racewatch.runtime import held as locks_held
from racewatch.runtime import attributes, imports, locations, shadow, stacks
from racewatch.runtime import sitekinds as K
from racewatch.runtime.clock import CLOCK_SHIFT, TID_MASK, join
from racewatch.runtime.guard import guard

_HEAPTYPE = 1 << 9

_local = _thread._local()  # .state: the calling OS thread's ThreadState (dies with the thread)
_threads = []    # tid -> ThreadState
_objects = shadow.LifetimeTable()
_lock_vars = {}    # lock id (M<id>, from 1) -> SyncVar, while the lock lives
_lock_names = {}   # lock id -> (type, address): while the lock lives, or for good once pinned
_next_lock_id = [1]
_dead_locks = []   # ids of locks that died, for the lock-order graph to forget
_semaphore_locks = []  # ids of locks released by another thread once: the graph forgets them
_reported = {}    # (site, site) -> number of times the pair raced
_site_kinds = bytearray(1)
_accessors = {}   # id(builtin) -> (builtin, is_write, how): see locations.ACCESSORS
_config = {"on_race": None, "history_full": False, "ignored_types": (), "lock_order": None}


class ThreadState:
    __slots__ = ("tid", "vc", "epoch", "held", "locks", "order_seen", "stale")

    def __init__(self, tid):
        self.tid = tid
        self.vc = [0] * tid + [1]
        self.epoch = 1 << CLOCK_SHIFT | tid << 1
        self.held = {}       # lock id -> held.Held
        self.locks = ()      # sorted ids of the locks held, once an access asked (None: not yet)
        self.order_seen = set()  # (held ids, lock) this thread already told the lock-order graph
        self.stale = False   # a lock it holds was released by another thread, or died

    @property
    def lockset(self):
        """The sorted ids of the locks held, as accesses record them: their names are kept
        for reports from then on, even once the locks die."""
        if self.locks is None:
            if self.stale:
                locks_held.prune(self, _alive)
            self.locks = tuple(sorted(self.held))
            for i in self.locks:
                _pin(i)
        return self.locks

    def tick(self):
        self.vc[self.tid] += 1
        self.epoch = self.vc[self.tid] << CLOCK_SHIFT | self.tid << 1


class SyncVar:
    __slots__ = ("ref", "vc", "inner_vc", "id", "owner", "inner", "signal", "pinned",
                 "__weakref__")

    def __init__(self, ref):
        self.ref = ref
        self.vc = []        # releases: a lock's by plain use only
        self.inner_vc = []  # a lock's releases by its primitive (inner): only plain use joins it
        self.id = 0         # a number once taken as a lock
        self.owner = None   # tid of the thread holding the lock
        self.inner = False  # a modelled primitive's own lock: orders nothing, still excludes
        self.signal = False  # released by another thread once: a semaphore, out of lock order
        self.pinned = False  # its name outlives it (an access or the graph refers to it)


def _current():
    # A thread-local, not a table by thread ident: idents are reused by later threads, and a
    # thread's own finalizers may still run after it announced its end.
    state = getattr(_local, "state", None)
    if state is None:
        with guard:  # collections paused: no finalizer of this thread runs before it has one
            state = getattr(_local, "state", None)  # a finalizer run by the lookup made it
            if state is None:
                state = ThreadState(len(_threads))
                _threads.append(state)
                _local.state = state
                _join_start(state)
    return state


def _join_start(state):
    """A new thread's start edge at its first event, when that comes before _bootstrap tells
    it (interceptors.py): a collection started by threading's own first allocations in the
    thread runs finalizers there, whose accesses come after everything its creator did before
    start(). The thread is the `self` of threading's Thread._bootstrap, its outermost frame."""
    threading = sys.modules.get("threading")
    bootstrap = getattr(getattr(getattr(threading, "Thread", None), "_bootstrap", None),
                        "__code__", None)
    frame = sys._getframe(1)
    while frame.f_back is not None:
        frame = frame.f_back
    if bootstrap is None or frame.f_code is not bootstrap:
        return
    var = _syncs.get(frame.f_locals.get("self"))
    if var is not None:
        join(state.vc, var.vc)


# -- configuration (not hot) -------------------------------------------------------------------

def configure(on_race=None, history_full=False, ignored_types=(), lock_order=None, **_c_only):
    """`on_race(event)` is called, outside the runtime's lock, once per new racing site pair;
    `lock_order(tid, held, held_wheres, lock, where)` once per new (held set, lock) of a thread
    that took a lock while holding others and released it (lockorder.Graph.on_edges); a
    where is (function, file, line) of the acquisition.
    (The C runtime takes the tables of locations.py as arguments; this twin imports them.)"""
    _config.update(on_race=on_race, history_full=history_full, lock_order=lock_order,
                   ignored_types=tuple(ignored_types))
    _accessors.clear()
    _accessors.update((id(f), (f, w, how)) for f, (w, how) in locations.ACCESSORS.items())


def register_sites(base, kinds):
    """Site kinds (sitekinds.py) for ids base, base+1, ...: one byte per site."""
    with guard:
        if len(_site_kinds) < base:
            _site_kinds.extend(bytes(base - len(_site_kinds)))
        _site_kinds[base:base + len(kinds)] = kinds


def current_tid():
    return _current().tid


def races():
    """{(site_a, site_b): times raced} for every racing site pair seen so far."""
    with guard:
        return dict(_reported)


def sync_name(lock_id):
    """(type, address) of lock M<lock_id>, or None."""
    return _lock_names.get(lock_id)


def dead_locks():
    """The ids of locks that died since the last call, or None (for the lock-order graph)."""
    return _take_ids(_dead_locks)


def semaphore_locks():
    """The ids of locks that became semaphores since the last call, or None (runtime/held.py)."""
    return _take_ids(_semaphore_locks)


def _take_ids(ids):
    if not ids:
        return None
    found = ids[:]
    del ids[:len(found)]
    return found


def reset_after_fork():
    """In a fork child: only the forking thread survives; start over with it as thread 0."""
    from racewatch.runtime import guard as guard_module
    guard_module.reset_after_fork()
    _local.state = None
    _threads.clear()
    _objects.clear()
    _syncs.clear()
    _lock_vars.clear()
    _lock_names.clear()
    _dead_locks.clear()
    _semaphore_locks.clear()
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

    # Each calls _probe directly: it finds the accessing frame two frames up. A probe is one
    # frame deeper than the program (the C runtime's none): where the program stands just
    # under its recursion limit, _probe's own frame may be over it, and the access goes
    # unrecorded rather than raise into the program (as in _probe).
    def __contains__(self, obj):
        if _enabled:
            try:
                _probe(obj, self.key, self.site, self.is_write)
            except RecursionError:
                pass
        return False

    def __invert__(self):
        if _enabled:
            try:
                _probe(None, self.key, self.site, self.is_write)
            except RecursionError:
                pass

    def __setitem__(self, key, obj):
        if _enabled:
            try:
                _probe(obj, key, self.site, self.is_write)
            except RecursionError:
                pass

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
    # (and, as theirs, records nothing where _probe's frame is over the recursion limit)
    def __contains__(self, obj):
        ~self.hit
        if _enabled:
            try:
                _probe(obj, self.key, self.site, self.is_write)
            except RecursionError:
                pass
        return False

    def __invert__(self):
        ~self.hit
        if _enabled:
            try:
                _probe(None, self.key, self.site, self.is_write)
            except RecursionError:
                pass

    def __setitem__(self, key, obj):
        ~self.hit
        if _enabled:
            try:
                _probe(obj, key, self.site, self.is_write)
            except RecursionError:
                pass


class CallToken(Token):
    """A call site's token: `token[callee] = arg0` for a call with one argument,
    `token[callee][arg0] = arg1` with two or three; an access only if the callee is a
    builtin accessor (see the C runtime's)."""

    __slots__ = ()

    # As Token's: one frame deeper than the call site, no more (the accessor looked up inline),
    # and nothing raised into the program from just under its recursion limit.
    def __setitem__(self, callee, arg0):
        try:
            action = _accessors.get(id(callee)) if _enabled else None
            if action is not None and callee is action[0]:
                _probe(arg0, None, self.site, action[1], action[2])  # two frames up: the call
        except RecursionError:
            pass

    def __getitem__(self, callee):
        try:
            action = _accessors.get(id(callee)) if _enabled else None
            if action is not None and callee is action[0]:
                return _BoundCall(self.site, action)
        except RecursionError:
            pass
        return _SINK


class _BoundCall:
    """`bound[arg0] = arg1`: the access of one accessor call with two or three arguments."""

    __slots__ = ("site", "action")

    def __init__(self, site, action):
        self.site, self.action = site, action

    def __setitem__(self, arg0, arg1):
        try:
            _probe(arg0, arg1, self.site, self.action[1], self.action[2])
        except RecursionError:
            pass


class _Sink:
    """`sink[arg0] = arg1`: a call that is no builtin accessor's records nothing."""

    __slots__ = ()

    def __setitem__(self, arg0, arg1):
        pass


_SINK = _Sink()


class ImportedToken(Token):
    """`value in token` after an import handed `value` to this thread (runtime/imports.py)."""

    __slots__ = ()

    def __contains__(self, value):
        if _enabled:
            imports.imported(value, self.site)
        return False


class InitializedToken(Token):
    """`~token` at the end of a module's top-level code (runtime/imports.py)."""

    __slots__ = ()

    def __invert__(self):
        if _enabled:
            imports.published(sys._getframe(1).f_globals)


# Kinds whose tokens have slots of their own (never merged with a line probe).
_OWN_TOKENS = {K.CALL: CallToken, K.IMPORTED: ImportedToken, K.INITIALIZED: InitializedToken}
_enabled = True


def token(site, is_write, key, hit=None):
    own = _OWN_TOKENS.get(_site_kinds[site]) if site < len(_site_kinds) else None
    if own is not None:
        return own(site, is_write, key)
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
    results = []
    try:
        state = _current()
        for location in locations.resolve(obj, key, _site_kinds[site] if site < len(_site_kinds)
                                          else 0, is_write, how, sys._getframe(2)):
            outcome = _record_access(*location[:4], site, state, *location[4:])
            if outcome is not None:
                results.append(outcome)
    except RecursionError:
        # The program is a few frames from its limit, where the C runtime adds none: this
        # access goes unrecorded rather than raise out of racewatch into the program.
        return
    on_race = _config["on_race"]
    for target, key, events, released in results:
        del released  # finalizers of swept objects run here, outside the lock
        if events and on_race is not None:
            for event in events:
                _report(on_race, (target, key) + event)


def _record_access(target, key, is_write, atomic, site, state, release=False):
    with guard:
        shadow.forget_dead(_objects, _syncs)  # before any lookup: an address may be reused
    record = _objects.get(target)
    if record is None:
        ignore = issubclass(type(target), _config["ignored_types"])  # not obj.__class__
        made = _objects.create(target, lambda ref: shadow.Record(ref, ignore))
        with guard:
            record = _objects.insert(*made)
    if record.ignore:
        return None
    stack = _capture_stack() if _config["history_full"] else None
    released = None
    with guard:
        if _objects.sweep_due():
            released = _objects.sweep()
        events = _check(record, key, state, site, is_write, atomic, stack)
        if release:
            released = (released, shadow.release_key(record.cells, key))
    return target, key, events, released


def _report(callback, *args):
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - like C's PyErr_WriteUnraisable: never into the program
        import traceback
        sys.stderr.write(f"Exception ignored in: {callback!r}\n{traceback.format_exc()}")


def _ordered(e, vc):
    tid = (e >> 1) & TID_MASK
    return (e >> CLOCK_SHIFT) <= (vc[tid] if tid < len(vc) else 0)


def _conflicts(prev, atomic, vc, locks):
    """An earlier access races with this one: unordered, not both atomic, and not both made
    while holding one lock (with an inner lock, holding it is all that orders them)."""
    return (not (atomic and prev.epoch & 1) and not _ordered(prev.epoch, vc)
            and not (locks and prev.lockset and not set(locks).isdisjoint(prev.lockset)))


def _check(record, key, state, site, is_write, atomic, stack):
    """FastTrack's read/write rules on one location; returns the new race events."""
    cells = record.cells
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = shadow.Cell()
    now = state.epoch | atomic
    vc = state.vc
    locks = state.lockset
    found = []
    if is_write:
        last = cell.write
        seen = _seen(last, now, atomic, site, cell.raced)
        if seen:  # same epoch: nothing new to learn, but maybe a later site
            if seen is _ELSEWHERE:
                cell.write = shadow.Access(now, site, locks, stack)
            return None
        if last is not None and _conflicts(last, atomic, vc, locks):
            found.append((True, last))
        if cell.shared is not None:
            found.extend((False, r) for _, r in sorted(cell.shared.items())  # by tid, as C
                         if _conflicts(r, atomic, vc, locks))  # (never changed in place:
                                                              # no nested event changes it)
        elif cell.read is not None and _conflicts(cell.read, atomic, vc, locks):
            found.append((False, cell.read))
        cell.write = shadow.Access(now, site, locks, stack)
        cell.read = None
        cell.shared = None
    else:
        last = cell.read
        if cell.shared is not None:
            last = cell.shared.get(state.tid)
        seen = _seen(last, now, atomic, site, cell.raced)
        if seen:
            if seen is _ELSEWHERE:
                access = shadow.Access(now, site, locks, stack)
                if cell.shared is not None:
                    cell.shared[state.tid] = access
                else:
                    cell.read = access
            return None
        if cell.write is not None and _conflicts(cell.write, atomic, vc, locks):
            found.append((True, cell.write))
        access = shadow.Access(now, site, locks, stack)
        if cell.shared is not None:
            cell.shared = {**cell.shared, state.tid: access}
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

def _sync_var(obj):
    _sweep_syncs()
    var = _syncs.get(obj)
    if var is None:
        made = _syncs.create(obj, SyncVar)
        with guard:
            var = _syncs.insert(*made)
    return var


def _sweep_syncs():
    """Forget dead sync objects; call with no lock held (dropping them may run finalizers)."""
    released = None
    with guard:
        shadow.forget_dead(_objects, _syncs)
        if _syncs.sweep_due():
            released = _syncs.sweep()
    del released


def _sync_var_held(obj):
    """`obj`'s sync variable, under the guard (collections paused: creating it runs none)."""
    var = _syncs.get(obj)
    return var if var is not None else _syncs.insert(*_syncs.create(obj, SyncVar))


def _name_lock(var, obj):
    """Number the lock of `var` (M<id>) the first time it is taken. Call with the guard held."""
    if not var.id:
        var.id = _next_lock_id[0]
        _next_lock_id[0] += 1
        _lock_vars[var.id] = var
        _lock_names[var.id] = (type(obj), id(obj))


def _pin(lock_id):
    var = _lock_vars.get(lock_id)
    if var is not None:
        var.pinned = True


def _lock_died(var, _vars=_lock_vars, _names=_lock_names, _threads=_threads, _dead=_dead_locks):
    """The lock of `var` died (a weakref callback: may run inside an update, so it only does
    single dict and attribute operations, never takes the runtime's lock). Bound names only:
    at interpreter shutdown this module's globals may already be gone."""
    if not var.id:
        return
    _vars.pop(var.id, None)
    if not var.pinned:
        _names.pop(var.id, None)
    if var.owner is not None and var.owner < len(_threads):
        _threads[var.owner].stale = True
        _threads[var.owner].locks = None
    _dead.append(var.id)


_syncs = shadow.LifetimeTable(on_death=_lock_died)


def _alive(lock_id):
    return lock_id in _lock_vars


def _in_order(lock_id):
    """Alive and a mutex still: no semaphore (runtime/held.py)."""
    var = _lock_vars.get(lock_id)
    return var is not None and not var.signal


LOCK_REENTRANT = 1  # flags of lock events (_locks_api.h): an RLock
LOCK_INNER = 2      # a modelled primitive's own lock: it orders nothing, holding it excludes


def lock_acquired(lock, flags, count):
    """A lock was acquired (`count` levels: more than 1 for RLock._acquire_restore): its last
    release happens-before what this thread does next, and this thread holds it."""
    _lock_event(lock, True, flags, count, _caller())


def lock_released(lock, flags, count):
    """A lock is about to be released (`count` levels, 0 for all): what this thread did
    happens-before its next acquire."""
    _lock_event(lock, False, flags, count, _caller())


def _caller():
    """(code, lasti) of the frame that called the lock's method (past the lock hooks, if they
    are Python), or None (C code called it with no Python frame on the stack)."""
    try:
        frame = sys._getframe(2)
    except ValueError:
        return None
    while frame is not None and frame.f_globals.get("__name__") == "racewatch.runtime.pylocks":
        frame = frame.f_back
    return (frame.f_code, frame.f_lasti) if frame is not None else None


def _lock_event(lock, is_acquire, flags, count, where):
    order = None
    reentrant = bool(flags & LOCK_REENTRANT)
    try:
        state = _current()
        var = _sync_var(lock)
        with guard:
            _name_lock(var, lock)
            # an inner lock taken or released by instrumented code (`with q.mutex:` in the
            # program) is a plain mutex for that event: its release orders the lock's next
            # acquisitions, the primitive's own included (var.vc holds only such releases),
            # and its acquisition follows every earlier release, the primitive's included
            var.inner = bool(flags & LOCK_INNER) and not (
                where is not None and attributes.code_instrumented(where[0]))
            changed = state.stale and locks_held.prune(state, _alive)
            if is_acquire:
                join(state.vc, var.vc)
                if not var.inner:
                    join(state.vc, var.inner_vc)
                changed |= locks_held.acquired(state, var, reentrant, count, where,
                                               _config["lock_order"] is not None)
            else:
                join(var.inner_vc if var.inner else var.vc, state.vc)
                signal = var.signal
                left, held = locks_held.released(state, var, reentrant, count, _threads)
                changed |= left
                if var.signal and not signal:  # a semaphore now: the graph forgets it
                    _semaphore_locks.append(var.id)
                if held is not None:
                    order = locks_held.order_event(state, var, held, _in_order)
            state.tick()
            if changed:
                state.locks = None
    except RecursionError:  # as in _probe: the program's limit, not racewatch's business
        return
    if order is not None:  # outside the lock: the graph captures stacks and may report
        tid, ids, wheres, lock_id, where = order
        for i in (*ids, lock_id):
            _pin(i)
        _report(_config["lock_order"], tid, ids, tuple(stacks.where_frame(w) for w in wheres),
                lock_id, stacks.where_frame(where))


def happens_after(obj):
    """Annotation / interceptor edge: the releases on `obj` happen-before what follows."""
    _sync_event(obj, True)


def happens_before(obj):
    """Annotation / interceptor edge: what came before happens-before acquires on `obj`."""
    _sync_event(obj, False)


def _sync_event(obj, is_acquire):
    try:
        _sweep_syncs()
        # All under the guard, collections paused: a finalizer that an allocation here ran
        # would be recorded before this edge; before a new thread's first one (its start),
        # unordered with everything its creator did.
        with guard:
            state = _current()
            var = _sync_var_held(obj)
            if is_acquire:
                join(state.vc, var.vc)
            else:
                join(var.vc, state.vc)
            state.tick()
    except RecursionError:  # as in _probe: the program's limit, not racewatch's business
        return


def thread_end(obj):
    """The calling thread is finishing: publish its clock on `obj` (its Thread) for join()."""
    happens_before(obj)
