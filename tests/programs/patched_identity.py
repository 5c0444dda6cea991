"""Prints what a program can see of the objects racewatch patches: the same under python,
`racewatch run` and `-X race` (tests/functional/test_patched_identity.py)."""

import _queue
import _thread
import concurrent.futures
import inspect
import multiprocessing
import pickle
import queue
import sys
import threading


def show(label, value):
    print(f"{label}: {value!r}")


def pickled(obj):
    try:
        return pickle.loads(pickle.dumps(obj)) is obj
    except Exception as exc:  # noqa: BLE001 - the transcript says what failed
        return f"{type(exc).__name__}: {exc}"


def signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}"


CLASSES = ["threading.Lock", "threading.RLock", "threading.Condition", "threading.Event",
           "threading.Semaphore", "threading.BoundedSemaphore", "threading.Barrier",
           "threading.Thread", "threading.Timer", "threading.local", "_thread.LockType",
           "_thread.RLock", "_thread.allocate_lock", "queue.Queue", "queue.LifoQueue",
           "queue.PriorityQueue", "queue.SimpleQueue", "_queue.SimpleQueue",
           "concurrent.futures.Future"]

METHODS = [(_thread.LockType, "acquire"), (_thread.LockType, "release"),
           (_thread.LockType, "__enter__"), (_thread.LockType, "__exit__"),
           (_thread.RLock, "acquire"), (_thread.RLock, "_release_save"),
           (_thread.RLock, "_acquire_restore"), (threading.Thread, "start"),
           (threading.Thread, "join"), (threading.Thread, "is_alive"),
           (threading.Event, "set"), (threading.Event, "wait"), (threading.Event, "is_set"),
           (threading.Event, "__init__"), (threading.Semaphore, "acquire"),
           (threading.Semaphore, "release"), (threading.Barrier, "wait"),
           (queue.Queue, "put"), (queue.Queue, "get"), (queue.Queue, "task_done"),
           (queue.Queue, "join"), (queue.Queue, "__init__"), (_queue.SimpleQueue, "put"),
           (_queue.SimpleQueue, "get"), (concurrent.futures.Future, "result"),
           (concurrent.futures.Future, "set_result")]


def identity():
    for name in CLASSES:
        module, attribute = name.rsplit(".", 1)
        cls = getattr(sys.modules[module], attribute)
        show(f"{name} is a", type(cls).__name__)
        show(f"{name} module, qualname", (cls.__module__, cls.__qualname__))
        show(f"{name} pickles to itself", pickled(cls))
        show(f"{name} signature", signature(cls))
    show("threading.Lock is the lock factory", threading.Lock is _thread.allocate_lock
         or threading.Lock is _thread.LockType)
    show("queue.SimpleQueue is _queue.SimpleQueue", queue.SimpleQueue is _queue.SimpleQueue)
    show("threading.__all__ resolves", sorted(
        (name, type(getattr(threading, name)).__name__) for name in threading.__all__))
    for owner, name in METHODS:
        method = getattr(owner, name)
        show(f"{owner.__qualname__}.{name}",
             (getattr(method, "__module__", None), getattr(method, "__qualname__", None),
              type(method).__name__, signature(method), pickled(method)))
    lock = threading.Lock()
    show("a lock's repr", repr(lock).split(" object at ")[0])
    show("pickling a lock", pickled(lock))


def managers():
    """Manager() pickles its registry (threading.Lock, RLock...) into the server process."""
    methods = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]
    for method in methods:
        with multiprocessing.get_context(method).Manager() as manager:
            lock, rlock = manager.Lock(), manager.RLock()
            with lock, rlock:
                shared = manager.dict(method=method)
            event = manager.Event()
            event.set()
            show(f"Manager() with {method}", (dict(shared), event.is_set()))


if __name__ == "__main__":
    identity()
    managers()
    sys.stdout.flush()
