"""Threads start and end, one is still running when the process forks, and the child starts a
thread of its own.

Under racewatch, threading (imported by racewatch before its hook) is instrumented in place
first, so the child's at-fork hooks (threading's `_after_fork`) run probed code: they must
race with nothing of the parent's threads, which the child does not have.
"""

import os
import sys
import threading
import warnings

if "racewatch.rewriter.instrument" in sys.modules:  # under racewatch run --include=threading
    from racewatch import session
    from racewatch.rewriter import inplace
    print("instrumented:", inplace.instrument_loaded(threading, session.current.instrumenter) > 0)

done = []


def work():
    done.append(threading.current_thread().name)


threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
release = threading.Event()
running = threading.Thread(target=release.wait)
running.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: a fork with a thread running
    pid = os.fork()
if pid == 0:
    child = threading.Thread(target=work)
    child.start()
    child.join()
    os._exit(len(done))
release.set()
running.join()
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
