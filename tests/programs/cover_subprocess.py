"""Subprocesses run under racewatch too (PYTHONRACE from `racewatch run`): each child spins
N times, the parent once; the counted line must count 3N + 1 over every process."""

import subprocess
import sys


def spin(n):
    for _ in range(n):
        pass  # the counted line


if __name__ == "__main__":
    if len(sys.argv) > 1:
        spin(int(sys.argv[1]))
    else:
        for _ in range(3):
            subprocess.run([sys.executable, __file__, "1000"], check=True)
        spin(1)
        print("parent done")
