"""Pickling and identity of threading's objects, as the program sees them (semantic identity):
classes and factories pickle by reference, with their own __module__, __qualname__ and
signature; instances refuse as they do under python."""

import inspect, pickle, threading
NAMES = ("Lock", "RLock", "Condition", "Event", "Semaphore", "BoundedSemaphore", "Barrier",
         "Timer", "Thread", "local")
for name in NAMES:
    obj = getattr(threading, name)
    try:
        back = pickle.loads(pickle.dumps(obj))
        print(name, "pickled:", back is obj)
    except Exception as exc:
        print(name, type(exc).__name__, exc)
    print(name, getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
    try:
        print(name, inspect.signature(obj))
    except (TypeError, ValueError) as exc:
        print(name, "no signature:", type(exc).__name__)
for name in ("Lock", "RLock", "Condition", "Event", "Semaphore"):
    try:
        pickle.dumps(getattr(threading, name)())
        print(name, "instance pickled")
    except Exception as exc:
        print(name, "instance:", type(exc).__name__, exc)
print("__all__ resolves:", all(hasattr(threading, n) for n in threading.__all__))
print("Lock is _thread's:", threading.Lock is __import__("_thread").allocate_lock or threading.Lock is getattr(__import__("_thread"), "lock", None))
