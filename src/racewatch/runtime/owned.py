"""racewatch's own locks: hidden from the lock hooks, so they are never the program's."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import os
import weakref

from racewatch.runtime import lockhooks

# Held by the forking thread through os.fork(): a fork child has only that thread, and a lock
# another thread held at the fork would stay held there for good; the first probe to need it
# (in an at-fork hook that runs before racewatch's own, threading's `_after_fork` when
# threading is instrumented) would hang. They are re-entrant, so such hooks can take them.
_fork_held = weakref.WeakSet()
_fork_held_last = weakref.WeakSet()  # taken after the others: code holding one of those may
_held = []                           # wait for one of these, never the other way round


def lock():
    """A plain lock of racewatch's own."""
    made = _thread.allocate_lock()
    lockhooks.hide(made)
    return made


# RLock's own acquire and release, taken before the lock hooks replace them (this module is
# imported before they are installed): called with the lock alone they allocate nothing, and
# so start no collection, and run no hook (guard.py: also in weakref callbacks at interpreter
# shutdown, when the pure-Python hooks' globals are gone).
RLOCK_ACQUIRE = _thread.RLock.acquire
RLOCK_RELEASE = _thread.RLock.release


def rlock():
    """A re-entrant lock of racewatch's own."""
    made = _thread.RLock()
    lockhooks.hide(made)
    return made


def forksafe(last=False):
    """A re-entrant lock of racewatch's own that the forking thread holds through a fork;
    `last`: taken after the others (the Python twin's guard, guard.py)."""
    made = rlock()
    (_fork_held_last if last else _fork_held).add(made)
    return made


def _before_fork():
    _held[:] = list(_fork_held) + list(_fork_held_last)
    for held in _held:
        held.acquire()


def _after_fork():
    for held in reversed(_held):
        held.release()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
