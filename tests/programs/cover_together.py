"""One of several processes released at the same instant: announce READY, wait for a line on
stdin (the test writes to all of them at once), spin 1,000 times and exit, so that they all
write their coverage files at the same moment.

usage: cover_together.py READY
"""

import os
import sys


def spin(n):
    for _ in range(n):
        pass  # the counted line


with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
sys.stdin.readline()
spin(1000)
