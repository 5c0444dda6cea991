"""A class attribute set by one thread and read by another."""

import threading

from turns import Turn


class Config:
    level = "info"


def worker(ready, finish):
    Config.level = "debug"
    ready.give()
    finish.take()


def main():
    ready, finish = Turn(), Turn()
    thread = threading.Thread(target=worker, args=(ready, finish), name="configurer")
    thread.start()
    ready.take()
    level = Config.level
    finish.give()
    thread.join()
    return level


main()
