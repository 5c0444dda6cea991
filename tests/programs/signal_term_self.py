"""Spins N times, sends itself SIGTERM, then would create MARKER: it never does under python,
which dies of the signal at once. With `thread` as argv[3], a second thread spins meanwhile.

usage: signal_term_self.py MARKER N [thread]
"""

import os
import signal
import sys
import threading


def spin(n):
    for _ in range(n):
        pass  # the counted line


def forever(started):
    started.set()
    while True:
        spin(1000)


marker, n = sys.argv[1], int(sys.argv[2])
if sys.argv[3:] == ["thread"]:
    started = threading.Event()
    threading.Thread(target=forever, args=(started,), daemon=True).start()
    started.wait()
spin(n)
os.kill(os.getpid(), signal.SIGTERM)
with open(marker, "w") as f:  # after the signal: the program's code, still running
    f.write("still running")
spin(n)
