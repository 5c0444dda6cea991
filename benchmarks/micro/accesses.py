"""Per-access costs by kind: prints ns per access of each loop body (run plain and under racewatch)."""

import sys
import threading
import time

LIMIT = 10          # a module variable: a location, so its reads are probed
counter = 0


def helper():       # a function nothing rebinds: its reads are not probed
    return 1


def helper1(x):
    return x


class Box:
    def __init__(self):
        self.x = 1

    def method(self):
        return 1


def attribute_read(box, n):
    for _ in range(n):
        box.x; box.x; box.x; box.x; box.x; box.x; box.x; box.x; box.x; box.x


def attribute_write(box, n):
    for _ in range(n):
        box.x = 1; box.x = 1; box.x = 1; box.x = 1; box.x = 1
        box.x = 1; box.x = 1; box.x = 1; box.x = 1; box.x = 1


def method_call(box, n):
    for _ in range(n):
        box.method(); box.method(); box.method(); box.method(); box.method()
        box.method(); box.method(); box.method(); box.method(); box.method()


def stable_global(box, n):
    for _ in range(n):
        helper; helper; helper; helper; helper; helper; helper; helper; helper; helper


def builtin_name(box, n):
    for _ in range(n):
        len; len; len; len; len; len; len; len; len; len


def variable_global(box, n):
    for _ in range(n):
        LIMIT; LIMIT; LIMIT; LIMIT; LIMIT; LIMIT; LIMIT; LIMIT; LIMIT; LIMIT


def dict_item(table, n):
    for _ in range(n):
        table["k"]; table["k"]; table["k"]; table["k"]; table["k"]
        table["k"]; table["k"]; table["k"]; table["k"]; table["k"]


def accessor_call(box, n):
    for _ in range(n):  # a builtin accessor called by name: its access is probed at the call
        getattr(box, "x"); getattr(box, "x"); getattr(box, "x"); getattr(box, "x")
        getattr(box, "x"); getattr(box, "x"); getattr(box, "x"); getattr(box, "x")
        getattr(box, "x"); getattr(box, "x")


def call_near_accessor(box, n):
    len  # code that loads an accessor by name probes each of its 1-3 argument calls for one
    for _ in range(n):
        helper1(1); helper1(1); helper1(1); helper1(1); helper1(1)
        helper1(1); helper1(1); helper1(1); helper1(1); helper1(1)


def two_args_near_accessor(box, n):
    len
    pair = divmod
    for _ in range(n):
        pair(7, 2); pair(7, 2); pair(7, 2); pair(7, 2); pair(7, 2)
        pair(7, 2); pair(7, 2); pair(7, 2); pair(7, 2); pair(7, 2)


def list_item(items, n):
    for _ in range(n):
        items[3]; items[3]; items[3]; items[3]; items[3]
        items[3]; items[3]; items[3]; items[3]; items[3]


def with_lock(lock, n):
    for _ in range(n):
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass
        with lock: pass


def acquire_release(lock, n):
    for _ in range(n):
        lock.acquire(); lock.release(); lock.acquire(); lock.release()
        lock.acquire(); lock.release(); lock.acquire(); lock.release()
        lock.acquire(); lock.release(); lock.acquire(); lock.release()
        lock.acquire(); lock.release(); lock.acquire(); lock.release()
        lock.acquire(); lock.release(); lock.acquire(); lock.release()


def nested_lock(locks, n):
    outer, inner = locks
    with outer:  # the inner acquires run while holding another lock: the lock-order check
        for _ in range(n):
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass
            with inner: pass


def empty(box, n):
    for _ in range(n):
        pass


CASES = [("attribute read", attribute_read, Box), ("attribute write", attribute_write, Box),
         ("method call", method_call, Box), ("stable global", stable_global, Box),
         ("builtin name", builtin_name, Box), ("variable global", variable_global, Box),
         ("accessor call", accessor_call, Box),
         ("call, accessor", call_near_accessor, Box),
         ("2-arg, accessor", two_args_near_accessor, Box),
         ("dict item", dict_item, lambda: {"k": 1}), ("list item", list_item, lambda: [0] * 8),
         ("with lock", with_lock, threading.Lock),
         ("acquire+release", acquire_release, threading.Lock),
         ("with lock nested", nested_lock, lambda: (threading.Lock(), threading.Lock()))]


def best(function, arg, n, rounds=7):
    times = []
    for _ in range(rounds):
        start = time.thread_time()
        function(arg, n)
        times.append(time.thread_time() - start)
    return min(times)


def main(n=200_000):
    base = best(empty, None, n)
    for name, function, make in CASES:
        cost = (best(function, make(), n) - base) / (10 * n) * 1e9
        print(f"{name:16} {cost:6.1f} ns")


if __name__ == "__main__":
    main(int(float(sys.argv[1]) * 200_000) if len(sys.argv) > 1 else 200_000)
