"""Prints what a script sees of how it was run: argv, sys.path[0], its module globals."""

import sys

print(sys.argv[1:], sys.path[0], __name__, __package__, __spec__)
print(__file__, globals().get("__cached__", "(no __cached__)"), type(__loader__).__name__)
print(sorted(k for k in globals() if k not in ("sys",)))
