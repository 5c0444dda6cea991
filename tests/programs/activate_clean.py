"""The same hand-off as activate_race.py, under a lock: no race, and the same output."""

import sys
import threading


class Box:
    def __init__(self):
        self.value = 0


def set_value(box, lock):
    with lock:
        box.value = 1


def main():
    box, lock = Box(), threading.Lock()
    worker = threading.Thread(target=set_value, args=(box, lock))
    worker.start()
    with lock:
        box.value = 2
    worker.join()
    print("done", box.value in (1, 2))
    print("to stderr", file=sys.stderr)


main()
