"""Stacks for reports: user frames only (racewatch's own frames never appear)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# Code objects of racewatch's runner below which no frame belongs to the program.
BOUNDARIES = set()


def _is_own(frame):
    name = frame.f_globals.get("__name__", "")
    return name == "racewatch" or name.startswith("racewatch.")


def capture(limit=64):
    """The calling thread's stack as (function, file, line) tuples, innermost first."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None and len(frames) < limit and frame.f_code not in BOUNDARIES:
        code = frame.f_code
        if not _is_own(frame) and code.co_filename != "<frozen runpy>":
            frames.append((code.co_qualname, code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return tuple(frames)


def from_code_lines(pairs):
    """(code, line) pairs recorded by a runtime (full history, lock creation) into report
    frames, as `capture` would have made them then."""
    frames = []
    for code, line in pairs:
        if code in BOUNDARIES:
            break
        if not code.co_filename.startswith(_OWN_DIR) and code.co_filename != "<frozen runpy>":
            frames.append((code.co_qualname, code.co_filename, line))
    return tuple(frames)


def line_of(code, lasti):
    """The line of the instruction at byte offset `lasti` of `code` (as frame.f_lineno)."""
    if lasti >= 0:
        for start, end, line in code.co_lines():
            if start <= lasti < end:
                return line if line is not None else code.co_firstlineno
    return code.co_firstlineno


def where_frame(where):
    """(function, file, line) of a runtime's (code, lasti), or of None (no Python frame)."""
    if where is None:
        return ("?", "?", 0)
    code, lasti = where
    return (code.co_qualname, code.co_filename, line_of(code, lasti))
