"""Threads that run one line N times each: exact coverage counts N * THREADS for that line.

usage: cover_threads.py [N] [THREADS]
"""

import sys
import threading

sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows


def spin(n):
    for _ in range(n):
        pass  # the counted line


n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
threads = [threading.Thread(target=spin, args=(n,)) for _ in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("done")
