"""Two racy sections, each a line on stdout after it; `exit N` / `raise` end it otherwise.

Prints its pid first (reports may go to a file named after it). Each section races once: a
worker writes, the main thread writes after it through a pipe, which racewatch does not see.
"""

import os
import sys
import threading

from turns import Turn


class Box:
    def __init__(self):
        self.first = 0
        self.second = 0


def set_first(box, ready):
    box.first = 1
    ready.give()


def set_second(box, ready):
    box.second = 1
    ready.give()


def section(target, box):
    ready = Turn()
    thread = threading.Thread(target=target, args=(box, ready), name=target.__name__)
    thread.start()
    ready.take()
    return thread


def main(args):
    print("pid", os.getpid(), flush=True)
    box = Box()
    first = section(set_first, box)
    box.first = 2
    first.join()
    print("after the first race", flush=True)
    second = section(set_second, box)
    box.second = 2
    second.join()
    print("after the second race", flush=True)
    if args[:1] == ["exit"]:
        sys.exit(int(args[1]))
    if args[:1] == ["raise"]:
        raise RuntimeError("the program's own failure")


main(sys.argv[1:])
