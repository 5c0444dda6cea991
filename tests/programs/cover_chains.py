"""Chained lines (rewriter/chains.py) where the line before runs but the line after does not:
raises between them, a daemon thread and a generator stopped between them, and, by mode, a
process that ends or forks between them.

usage: cover_chains.py                       (for the sys.settrace oracle)
       cover_chains.py exit                  (os._exit between two lines)
       cover_chains.py fork                  (fork between two lines: both run the second)
       cover_chains.py sigterm MARKER        (SIGTERM while blocked between two lines)
"""

import os
import sys
import threading


def divide(a, b):
    first = a + 1
    second = first * 2
    third = second // b
    fourth = third + first
    return fourth


def middle(a, b):
    left = divide(a, b)
    right = left + 1  # not reached when divide raises
    return right


def outer(values):
    total = 0
    for a, b in values:
        try:
            total += middle(a, b)
        except ZeroDivisionError:
            total -= 1
    return total


def spread(items):
    head = len(
        items)
    tail = (head
            + 1)
    both = head + tail
    return both


def stopped_generator():
    value = 1
    yield value
    after = value + 1  # never: the generator is never resumed
    yield after


started = threading.Event()
forever = threading.Event()


def parked():
    started.set(); forever.wait()  # noqa: E702 - one line: parked inside it, for sure
    never = 1  # never: the thread is a daemon, parked until the process ends
    return never


def oracle_shapes():
    print(outer([(1, 1), (2, 0), (3, 2), (4, 0)]))
    print(spread("abc"), spread([]))
    generator = stopped_generator()
    next(generator)
    thread = threading.Thread(target=parked, daemon=True)
    thread.start()
    started.wait()
    return generator  # alive (not closed) until the process ends


def exit_between():
    before = 1
    os._exit(before - 1)
    after = 2  # never: the process has ended  # noqa: F841


def fork_between():
    before = 1  # before the fork
    pid = os.fork()
    after = before + 1  # both processes: the child's frame was on its way here  # the fork line
    if pid == 0:
        os._exit(after - 2)
    _, status = os.waitpid(pid, 0)
    print("child status", os.waitstatus_to_exitcode(status))


def sigterm_between(marker):
    with open(marker + ".tmp", "w") as f:
        f.write("parked")
    os.replace(marker + ".tmp", marker)
    before = 1
    forever.wait()  # blocked here until SIGTERM
    after = before + 1  # never: SIGTERM ended the process  # noqa: F841


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "oracle"
    if mode == "exit":
        exit_between()
    elif mode == "fork":
        fork_between()
    elif mode == "sigterm":
        sigterm_between(sys.argv[2])
    else:
        kept = oracle_shapes()
