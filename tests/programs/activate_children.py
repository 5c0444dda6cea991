"""A parent that races nowhere itself; its children race: `subprocess` (`subprocess-_exit`: the
child ends by os._exit) or a multiprocessing start method (spawn, fork, forkserver) as argv[1],
and how many children race at once as argv[2] (default 1). Prints its pid, then each child's
exit status."""

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


def main(how, count):
    print("parent pid", os.getpid(), flush=True)
    if how.startswith("subprocess"):
        race = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activate_race.py")
        ending = ["_exit", "0"] if how == "subprocess-_exit" else []
        children = [subprocess.Popen([sys.executable, race, *ending]) for _ in range(count)]
        statuses = [child.wait() for child in children]
    else:
        context = multiprocessing.get_context(how)
        children = [context.Process(target=racy_child) for _ in range(count)]
        for child in children:
            child.start()
        for child in children:
            child.join()
        statuses = [child.exitcode for child in children]
    for status in statuses:
        print("child status", status, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
