"""Object lifetimes as the program sees them: when __del__ and weakref callbacks run, and what
an object's __weakref__ shows, for objects that instrumented code touched (semantic identity).
"""

import concurrent.futures
import threading
import types
import weakref


class Noisy:
    def __init__(self, name):
        self.name = name

    def __del__(self):
        print("__del__", self.name)


class Namespace(types.SimpleNamespace):
    def __del__(self):
        print("__del__", self.name)


class Slotted:
    __slots__ = ("name", "value")

    def __init__(self, name):
        self.name = name

    def __del__(self):
        print("__del__", self.name)


class Failure(Exception):
    pass


def touch(obj):
    obj.value = 1
    return obj.value


def store(table, key):
    table[key] = 1
    return table[key]


def lifetimes(where):
    obj = Noisy(f"object {where}")
    touch(obj)
    del obj
    print("after del object", where)

    slotted = Slotted(f"slotted {where}")
    touch(slotted)
    del slotted
    print("after del slotted", where)

    namespace = Namespace(name=f"namespace {where}")
    touch(namespace)
    del namespace
    print("after del namespace", where)

    target = Noisy(f"weakly referenced {where}")
    touch(target)
    ref = weakref.ref(target, lambda r: print("weakref callback", where))
    del target
    print("after del weakly referenced", where, ref())

    table = {}
    key = ("key", Noisy(f"tuple key {where}"))
    store(table, key)
    del table[key], key
    print("after del tuple key", where)

    error = Failure()
    touch(error)
    print("exception __weakref__:", error.__weakref__, weakref.getweakrefcount(error))


def produce(n):
    return Noisy(f"future result {n}")


lifetimes("in main thread")
worker = threading.Thread(target=lifetimes, args=("in a thread",))
worker.start()
worker.join()

with concurrent.futures.ThreadPoolExecutor(1) as pool:
    futures = [pool.submit(produce, n) for n in range(2)]
    print(sorted(f.result().name for f in concurrent.futures.as_completed(futures)))
refs = [weakref.ref(f) for f in futures]
del futures
print("futures still alive:", sum(r() is not None for r in refs))

pending = [concurrent.futures.Future() for _ in range(2)]
finished = concurrent.futures.Future()
finished.set_result(None)
pending.append(finished)
del finished
try:
    for future in concurrent.futures.as_completed(pending, timeout=0):
        pending.remove(future)
        ref = weakref.ref(future)
        del future
        print("yielded future alive after del:", ref() is not None)
except concurrent.futures.TimeoutError:
    print("as_completed timed out")
print("end")
