"""Spins N times, tells the test it is done (the marker file), then waits to be killed.

usage: cover_signal.py MARKER N
"""

import sys
import time


def spin(n):
    for _ in range(n):
        pass  # the counted line


marker, n = sys.argv[1], int(sys.argv[2])
spin(n)
with open(marker + ".tmp", "w") as f:
    f.write("spun")
import os  # noqa: E402
os.replace(marker + ".tmp", marker)
while True:
    time.sleep(60)
