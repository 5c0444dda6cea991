"""Object lifetimes a program can observe, printed: racewatch's shadow state must not change
any of them (it never keeps an object alive, never shows through an object's attributes)."""

import sys
import types
import weakref
from concurrent.futures import Future, as_completed


class Token:
    pass


class Failure(Exception):
    pass


def exception_weakref():
    err = Failure("x")
    err.code = 1          # accesses: racewatch keeps state for err
    err.code += 1
    print("exception __weakref__:", err.__weakref__, weakref.getweakrefcount(err))


def deleted_keys_die():
    table = {(Token(), i): i for i in range(1000)}   # tuples: no weakref to them
    for key in table:
        table[key] += 1
    died = []
    watch = [weakref.ref(key[0], lambda ref: died.append(1)) for key in table]
    while table:
        key = next(iter(table))
        del table[key]
        del key
    print("deleted tuple keys freed:", len(died), "of", len(watch))
    key = ("config", int("12345678901234567890"))   # made here: no constant holds it
    counts = {key: 1}
    counts[key] += 1
    del counts[key]
    print("references to a deleted key:", sys.getrefcount(key))


def namespace_dies():
    died = []
    ns = types.SimpleNamespace(payload=Token())
    watch = weakref.ref(ns.payload, lambda ref: died.append(1))
    ns.count = 1
    ns.count += 1
    del ns
    print("namespace contents freed at once:", died == [1], watch() is None)


def yielded_futures_die():
    futures = [Future() for _ in range(4)]
    for i, future in enumerate(futures):
        future.set_result(i)
    del future
    freed = []
    for future in as_completed(futures):
        futures.remove(future)
        ref = weakref.ref(future)
        del future
        freed.append(ref() is None)
    print("yielded futures freed:", freed)


exception_weakref()
deleted_keys_die()
namespace_dies()
yielded_futures_die()
