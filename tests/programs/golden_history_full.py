"""A write three calls deep in the worker: with history=full its whole stack is reported."""

import threading

from turns import Turn


class Settings:
    def __init__(self):
        self.mode = "fast"


def store(settings, mode):
    settings.mode = mode


def apply(settings):
    store(settings, "safe")


def worker(settings, ready, finish):
    apply(settings)
    ready.give()
    finish.take()


def main():
    settings, ready, finish = Settings(), Turn(), Turn()
    thread = threading.Thread(target=worker, args=(settings, ready, finish), name="applier")
    thread.start()
    ready.take()
    mode = settings.mode
    finish.give()
    thread.join()
    return mode


main()
