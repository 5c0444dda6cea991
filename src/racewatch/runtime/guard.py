"""The Python twin's one lock, held with automatic garbage collection paused.

The twin's updates are Python code: they allocate, call and loop, and a collection could start
at any of those points and run a program's finalizer (`__del__`, a weakref callback) while the
lock is held. A finalizer that waits for a lock held by a thread that is itself waiting for
this one would hang the program. So collections are paused (as `gc.disable()` does) from just
before the lock is taken to just after it is released, and resumed only if they were enabled
and no other thread is still inside. (Another thread asking `gc.isenabled()` in that moment
sees False; the C runtime, which runs no Python code under its locks, needs none of this.)
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import gc

from racewatch.runtime import owned

# [the twin's state lock, the lock of _paused] (reentrant: a collection may start in _pause,
# see there), racewatch's own (never the program's); replaced in a fork child
_locks = [owned.rlock(), owned.rlock()]
_paused = [0, False]  # threads inside or about to be, whether gc was enabled before


# Names bound as defaults: weakref callbacks use the guard at interpreter shutdown too, when
# this module's globals may already be gone.
def _pause(_locks=_locks, _paused=_paused, _isenabled=gc.isenabled, _disable=gc.disable):
    with _locks[1]:
        if _paused[0] == 0:
            enabled = _isenabled()  # a collection may run here, and with it nested guards:
            _disable()              # they leave the count as they found it
            if _paused[0] == 0:
                _paused[1] = enabled
        _paused[0] += 1


def _resume(_locks=_locks, _paused=_paused, _enable=gc.enable, _release=owned.RLOCK_RELEASE):
    lock = _locks[1]
    lock.acquire()
    try:
        _paused[0] -= 1
        if _paused[0] == 0 and _paused[1]:
            _enable()
    finally:
        # Not `with` nor a hooked release: either may allocate, and so start a collection,
        # whose finalizers would run holding this lock (one taking a lock whose holder waits
        # for this one, in _pause, would hang the program). Not enough on 3.12+: there a
        # collection scheduled earlier runs as _enable() (or _pause's _isenabled()) returns,
        # still under this lock; the guard needs collections off before taking it and back on
        # only after releasing it (not done yet).
        _release(lock)


class Guard:
    """`with guard:` holds the twin's lock, with collections paused (reentrant)."""

    __slots__ = ()

    def __enter__(self, _pause=_pause, _locks=_locks):
        _pause()
        _locks[0].acquire()

    def __exit__(self, *exc, _resume=_resume, _locks=_locks):
        _locks[0].release()
        _resume()


guard = Guard()


def reset_after_fork():
    """In a fork child only this thread runs: the locks are new, collections as they were."""
    _locks[:] = [owned.rlock(), owned.rlock()]
    if _paused[0] and _paused[1]:
        gc.enable()
    _paused[:] = [0, False]
