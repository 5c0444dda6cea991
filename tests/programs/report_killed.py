"""Races once (two threads write one attribute), then dies of SIGKILL: no summary is written.

The race is reported when the second write happens, before the kill, so the report file holds
a header and a complete race record, and nothing after them.
"""

import os
import signal
import threading


class Box:
    def __init__(self):
        self.value = 0


def put(box, value):
    box.value = value


def main():
    box = Box()
    threads = [threading.Thread(target=put, args=(box, v), name=f"put-{v}") for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.kill(os.getpid(), signal.SIGKILL)


main()
