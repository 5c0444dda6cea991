"""The lock hooks without a C compiler: _locks.c's hooks as Python functions in the lock types' dicts.

The same events reach the engine, whoever calls the lock. What differs from the C hooks: a
lock's methods are Python functions (a bound method, a frame of racewatch's in the traceback of
an interrupted acquire), and creation is not seen (lock-order reports show where a lock was
first seen), except for the interpreter's thread-end markers, hidden through threading.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import ctypes
import gc
import sys
import weakref

HIDDEN, INNER = 1, 2                 # what racewatch knows of a lock
REENTRANT, INNER_FLAG = 1, 2         # the flags of lock events (_locks_api.h)
ACQUIRE, RELEASE, RELEASE_ALL, RESTORE, PUT, GET = range(6)

_LOCK_HOOKS = {"acquire": ACQUIRE, "acquire_lock": ACQUIRE, "__enter__": ACQUIRE,
               "release": RELEASE, "release_lock": RELEASE, "__exit__": RELEASE}
_RLOCK_HOOKS = {"acquire": ACQUIRE, "__enter__": ACQUIRE, "release": RELEASE,
                "__exit__": RELEASE, "_release_save": RELEASE_ALL, "_acquire_restore": RESTORE}
_QUEUE_HOOKS = {"put": PUT, "put_nowait": PUT, "get": GET, "get_nowait": GET}

_sink = None        # (acquired, released, happens_before, happens_after)
_known = {}         # id(lock) -> flags, while the lock lives
_refs = {}          # id(lock) -> the weakref that forgets it
_installed = []     # (type, name, original) to put back
_modified = ctypes.pythonapi.PyType_Modified
_modified.argtypes = [ctypes.py_object]
_modified.restype = None


def _type_dict(tp):
    """The real dict of a type (its __dict__ is a read-only view of it)."""
    return gc.get_referents(tp.__dict__)[0]


def _hook(original, action, reentrant):
    def hook(self, *args, **kwargs):
        sink = _sink
        flags = _known.get(id(self), 0) if sink is not None else HIDDEN
        if flags & HIDDEN:
            return original(self, *args, **kwargs)
        event = (REENTRANT if reentrant else 0) | (INNER_FLAG if flags & INNER else 0)
        if action in (RELEASE, RELEASE_ALL):
            sink[1](self, event, 0 if action == RELEASE_ALL else 1)
            return original(self, *args, **kwargs)
        result = original(self, *args, **kwargs)
        if action == ACQUIRE and result is True:
            sink[0](self, event, 1)
        elif action == RESTORE:
            sink[0](self, event, _restored(args))
        return result

    hook.__name__ = original.__name__
    hook.__qualname__ = original.__qualname__
    hook.__doc__ = original.__doc__
    return hook


def _queue_hook(original, action):
    def hook(self, *args, **kwargs):
        sink = _sink
        if sink is not None and action == PUT:
            sink[2](self)
        result = original(self, *args, **kwargs)
        if sink is not None and action == GET:
            sink[3](self)
        return result

    hook.__name__ = original.__name__
    hook.__qualname__ = original.__qualname__
    hook.__doc__ = original.__doc__
    return hook


def _restored(args):
    state = args[0] if args else None
    count = state[0] if type(state) is tuple and state and type(state[0]) is int else 1
    return count or 1


def _install_type(tp, hooks, make):
    namespace = _type_dict(tp)
    for name, action in hooks.items():
        original = namespace.get(name)
        if original is None or any(t is tp and n == name for t, n, _ in _installed):
            continue
        _installed.append((tp, name, original))
        namespace[name] = make(original, action)
    _modified(tp)


def install(sink, track_creation=True):
    """Lock events go to `sink`: (acquired, released, happens_before, happens_after)."""
    global _sink
    _sink = tuple(sink)
    _install_type(_thread.LockType, _LOCK_HOOKS, lambda o, a: _hook(o, a, False))
    _install_type(_thread.RLock, _RLOCK_HOOKS, lambda o, a: _hook(o, a, True))
    _hide_sentinels()


def _hide_sentinels():
    """3.11/3.12: threading makes each thread's end marker with _thread._set_sentinel."""
    threading = sys.modules.get("threading")
    make = getattr(threading, "_set_sentinel", None)
    if make is None or getattr(make, "_racewatch", False):
        return

    def set_sentinel():
        lock = make()
        hide(lock)
        return lock

    set_sentinel._racewatch = True
    _installed.append((threading, "_set_sentinel", make))
    threading._set_sentinel = set_sentinel


def hook_simple_queue():
    if _sink is not None:
        import _queue
        _install_type(_queue.SimpleQueue, _QUEUE_HOOKS, _queue_hook)


def uninstall():
    global _sink
    _sink = None
    while _installed:
        owner, name, original = _installed.pop()
        if isinstance(owner, type):
            _type_dict(owner)[name] = original
            _modified(owner)
        else:
            setattr(owner, name, original)


def _mark(lock, flag):
    if type(lock) not in (_thread.LockType, _thread.RLock) and \
            not isinstance(lock, (_thread.LockType, _thread.RLock)):
        raise TypeError(f"not a _thread lock: {type(lock).__name__}")
    key = id(lock)
    if key not in _refs:
        def forget(ref, key=key):
            if _refs.get(key) is ref:
                del _refs[key]
                _known.pop(key, None)
        _refs[key] = weakref.ref(lock, forget)
    _known[key] = _known.get(key, 0) | flag


def hide(lock):
    _mark(lock, HIDDEN)


def mark_inner(lock):
    _mark(lock, INNER)


def flags(lock):
    found = _known.get(id(lock), 0)
    return {"hidden": bool(found & HIDDEN), "inner": bool(found & INNER)}


def creation_of(address):
    return None  # creation is not seen without the C hooks


def after_fork():
    pass


def known():
    return len(_known)
