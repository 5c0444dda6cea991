"""A parent that races nowhere itself; its children race: `subprocess` or a multiprocessing
start method (spawn, fork, forkserver) as argv[1]. Prints each child's exit status."""

import multiprocessing
import os
import subprocess
import sys
import threading


class Box:
    def __init__(self):
        self.value = 0


def set_value(box):
    box.value = 1


def racy_child():
    box = Box()
    worker = threading.Thread(target=set_value, args=(box,))
    worker.start()
    box.value = 2  # the race, in the child process
    worker.join()


def main(how):
    if how == "subprocess":
        race = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activate_race.py")
        status = subprocess.run([sys.executable, race]).returncode
    else:
        context = multiprocessing.get_context(how)
        child = context.Process(target=racy_child)
        child.start()
        child.join()
        status = child.exitcode
    print("child status", status, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
