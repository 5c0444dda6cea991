"""Forks once from a single-threaded program, warnings shown whatever their category: python
3.12+ warns only when the process has more than one thread."""

import os
import warnings

warnings.simplefilter("always")
pid = os.fork()
if pid == 0:
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
