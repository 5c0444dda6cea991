"""A program that replaces builtins while it runs, as CPython's test_functools does with
`builtins.len = lru_cache(4)(len)`: only its own code (and the library code it calls) may call
the replacements, never racewatch's probes, reports or patches.

Prints what the replacements saw; the same under python and under racewatch.
"""

import builtins
import functools
import queue
import sys
import threading

NAMES = ("len", "isinstance", "issubclass", "getattr", "hasattr", "setattr", "id", "hash",
         "iter", "next", "sorted", "min", "max", "any", "all", "sum", "repr", "callable",
         "vars", "__import__")
originals = {name: getattr(builtins, name) for name in NAMES}
seen = queue.SimpleQueue()  # (calling module, builtin): thread-safe, and no race to report


def replacement(name, original):
    def replaced(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__")
        if caller != __name__:
            seen.put((caller, name))
        return original(*args, **kwargs)
    return replaced


# test_functools' test_lru_reentrancy_with_len: len cached while the program calls it
builtins.len = cached = functools.lru_cache(4)(len)
try:
    lengths = [len("abcdefghijklmn"[:i]) for i in [0, 0, 1, 2, 3, 3, 4, 5, 6, 1, 7, 2, 1]]
finally:
    builtins.len = originals["len"]
print("lengths:", lengths)
print("cache:", cached.cache_info())


class Box:
    pass


box, totals, lock = Box(), {}, threading.Lock()
box.items = []
ready = threading.Condition(lock)


def work(n):
    for i in range(200):
        with lock:
            box.items.append(i)
            totals[n] = totals.get(n, 0) + i
            ready.notify_all()


for name, original in originals.items():
    setattr(builtins, name, replacement(name, original))
try:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
finally:
    for name, original in originals.items():
        setattr(builtins, name, original)
calls = set()
while not seen.empty():
    calls.add(seen.get())
print("items:", len(box.items), "totals:", sorted(totals.items()))
print("replacements called from:", sorted(calls, key=repr))
