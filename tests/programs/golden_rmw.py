"""Read-modify-write from two threads, `counter.n += 1`: two reports (the read and the write)."""

import threading

from turns import Turn


class Counter:
    def __init__(self):
        self.n = 0


def bump(counter):
    counter.n += 1


def worker(counter, ready, finish):
    bump(counter)
    ready.give()
    finish.take()  # alive ("running") while the main thread's reports are written


def main():
    counter, ready, finish = Counter(), Turn(), Turn()
    thread = threading.Thread(target=worker, args=(counter, ready, finish), name="worker")
    thread.start()
    ready.take()  # after the worker's bump, through a pipe: no happens-before
    bump(counter)
    finish.give()
    thread.join()


main()
