"""racewatch's own locks across os.fork(): the forking thread holds every one through it.

A fork child has only the forking thread. A lock another thread held at the fork would stay
held in the child for good, and the first probe there to need it (in an at-fork hook that
runs before racewatch's own, threading's `_after_fork` when threading is instrumented) would
hang. So a hook before the fork takes them all (waiting for other threads to leave), and
hooks after it give them back; they are re-entrant, so the child's hooks can take them again
in between.
"""

import _thread
import os
import weakref

_locks = weakref.WeakSet()


def lock():
    """A new lock of racewatch's own (re-entrant), held by the forking thread through a fork."""
    new = _thread.RLock()
    _locks.add(new)
    return new


def _before():
    global _held
    _held = list(_locks)
    for held in _held:
        held.acquire()


def _after():
    global _held
    for held in reversed(_held):
        held.release()
    _held = []


_held = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before, after_in_parent=_after, after_in_child=_after)
