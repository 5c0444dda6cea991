"""Spins 1,000 times per unit of work, and appends the unit's number to PROGRESS after each,
until killed (for `--cover-flush`: a kill -9 loses at most the last interval).

usage: cover_progress.py PROGRESS
"""

import sys


def spin(n):
    for _ in range(n):
        pass  # the counted line


unit = 0
with open(sys.argv[1], "a") as progress:
    while True:
        spin(1000)
        unit += 1
        progress.write(f"{unit}\n")
        progress.flush()
