"""Frames as the program sees them: stack depth, callers, warnings' stacklevel, recursion depth.

Printed for the semantic-identity suite, which compares the output under python, racewatch
run, -X race and PYTHONRACE.
"""

import inspect
import sys
import threading
import traceback
import warnings


def stack_depth():
    return len(inspect.stack())


def deepest(n=0):
    try:
        return deepest(n + 1)
    except RecursionError:
        return n


def nested_repr_depth():
    """How deep a nested list can be repr'd: C recursion, counted by CPython 3.11-3.13 (3.14+
    measure the C stack itself)."""
    low, high = 1, 1 << 17
    while low < high:
        middle = (low + high + 1) // 2
        nested = []
        for _ in range(middle):
            nested = [nested]
        try:
            repr(nested)
            low = middle
        except RecursionError:
            high = middle - 1
    return low


def warn_from_function():
    warnings.warn("from a function, attributed to its caller", stacklevel=2)


print("module stack:", len(inspect.stack()))
print("function stack:", stack_depth())
print("outermost frame:", inspect.stack()[-1].function)
try:
    caller = sys._getframe(1)
except ValueError as exc:
    print("sys._getframe(1):", exc)
else:
    print("sys._getframe(1):", caller.f_code.co_filename, caller.f_code.co_name)
frame, chain = sys._current_frames()[threading.main_thread().ident], 0
while frame is not None:
    frame, chain = frame.f_back, chain + 1
print("frames of the main thread:", chain)
traceback.print_stack(file=sys.stdout)
warnings.warn("at module level, attributed past the bottom", stacklevel=2)
warn_from_function()
print("recursion depth reached:", deepest())
sys.setrecursionlimit(120)
print("recursion depth reached under limit 120:", deepest())
sys.setrecursionlimit(1000)
if sys.version_info < (3, 14):
    print("nested repr depth:", nested_repr_depth())
