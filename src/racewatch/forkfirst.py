"""Across os.fork, racewatch's probes record nothing until the child's session has reset its state.

A child's at-fork hooks run in the order they were registered, and the session registers its
reset late: threading's (and logging's, random's...) run first, and when those modules are
instrumented, their probes would check the child's accesses against the shadow state of the
parent's threads, which are gone (false races in threading's `_after_fork`). Where threading
was imported before racewatch (so its hook comes first whatever racewatch registers), only a
hook that runs before the fork is sure to come first: the probes are off from just before the
fork; the parent turns them on again at once, the child's session reset does. What runs in
between in the child is its one thread putting its libraries in order: nothing can race with
it then, and the reset forgets it. (In the parent, other threads' accesses during the fork
itself go unrecorded: a miss at worst, never a false report.)
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys


def _engine():
    runtime = sys.modules.get("racewatch.runtime")
    return getattr(runtime, "engine", None)


def _before():
    engine = _engine()
    if engine is not None:
        engine.enable(False)


def _parent():
    engine = _engine()
    session = getattr(sys.modules.get("racewatch.session"), "current", None)
    if engine is not None and session is not None and session.active:
        engine.enable(True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before, after_in_parent=_parent)
