"""One race (a worker and the main thread write one attribute), then `exit N`, `_exit N`
(os._exit) or `raise` if asked.

Used under -X race / PYTHONRACE: prints its pid first (reports may go to PREFIX.<pid>).
"""

import os
import sys
import threading


class Box:
    def __init__(self):
        self.value = 0


def set_value(box):
    box.value = 1


def main(args):
    print("pid", os.getpid(), flush=True)
    box = Box()
    worker = threading.Thread(target=set_value, args=(box,), name="setter")
    worker.start()
    box.value = 2
    worker.join()
    print("done", flush=True)
    if args[:1] == ["exit"]:
        sys.exit(int(args[1]))
    if args[:1] == ["_exit"]:
        sys.stdout.flush()
        os._exit(int(args[1]))
    if args[:1] == ["raise"]:
        raise RuntimeError("the program's own failure")


if __name__ == "__main__":
    main(sys.argv[1:])
