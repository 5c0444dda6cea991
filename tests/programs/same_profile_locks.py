"""What profilers see of a program's lock calls (`with lock:`, acquire, release): the lock's
own methods, as many times as the program calls them (semantic identity)."""

import threading

import profiled


def work(lock, rlock, rounds=100):
    for _ in range(rounds):
        with lock:
            pass
        lock.acquire()
        lock.release()
        with rlock:
            rlock.acquire()
            rlock.release()


profiled.print_cprofile(work, threading.Lock(), threading.RLock())
profiled.print_setprofile(work, threading.Lock(), threading.RLock(), 10)
