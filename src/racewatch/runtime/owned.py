"""racewatch's own locks: hidden from the lock hooks, so they are never the program's."""

import _thread

from racewatch.runtime import lockhooks


def lock():
    """A plain lock of racewatch's own."""
    made = _thread.allocate_lock()
    lockhooks.hide(made)
    return made


def rlock():
    """A re-entrant lock of racewatch's own."""
    made = _thread.RLock()
    lockhooks.hide(made)
    return made
