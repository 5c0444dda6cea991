"""gc.isenabled() tells what the program set, and gc.disable() holds, while other threads'
accesses are being recorded (the pure-Python runtime holds its own lock and pauses collections
as it records); children forked meanwhile run on, with collections as the program set them."""

import gc
import os
import threading


class Box:
    n = 0


box = Box()
lock = threading.Lock()
done = threading.Event()


def count():
    while not done.is_set():
        with lock:
            box.n += 1


def main():
    workers = [threading.Thread(target=count) for _ in range(2)]
    for worker in workers:
        worker.start()
    wrong = 0
    for _ in range(3000):
        wrong += not gc.isenabled()   # the program never turned them off
        gc.disable()
        wrong += gc.isenabled()       # nor back on
        gc.enable()
    for _ in range(30):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gc.isenabled() else 1)
        wrong += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
    gc.disable()
    done.set()
    for worker in workers:
        worker.join()
    print("wrong", wrong, "enabled at the end", gc.isenabled())


main()
