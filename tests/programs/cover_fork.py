"""Fork: parent 4 threads x 100,000, child 50,000 after the fork, parent 25,000 after it.
The spin line must count 475,000 over both processes: the child counts only its own part."""

import os
import sys
import threading
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads alive


def spin(n):
    for _ in range(n):
        pass  # the counted line


threads = [threading.Thread(target=spin, args=(100_000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
pid = os.fork()
if pid == 0:
    spin(50_000)
    if len(sys.argv) > 1 and sys.argv[1] == "_exit":
        os._exit(0)  # no atexit: the counts are written all the same
    sys.exit(0)
spin(25_000)
_, status = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(status))
