"""The Python twin's one lock, held with automatic garbage collection paused.

The twin's updates are Python code: they allocate, call and loop, and a collection could start
at any of those points and run a program's finalizer (`__del__`, a weakref callback) while the
lock is held. A finalizer that waits for a lock held by a thread that is itself waiting for
this one would hang the program. So collections are paused from before the lock is taken to
after it is released, and resumed when no thread is inside any more, with no lock of
racewatch's held: on 3.12+ a collection scheduled meanwhile runs as soon as they are (as the
call that resumes them returns). Counting the threads inside and switching collections is one
C call (`_locks.gc_pause()` / `gc_resume()`, runtime/_locks.c), which also keeps the program's
own gc.enable()/gc.disable()/gc.isenabled() acting on the state it set. The C runtime, which
runs no Python code under its locks, needs none of this.

Without racewatch's C extensions (no compiler) the same is done in Python under a small lock of
its own, which cannot be made safe on 3.12+: a scheduled collection can run as gc.isenabled()
or gc.enable() returns with that lock held, and a finalizer waiting there for a program's lock
hangs the program (a collection at almost every allocation makes it likely); another thread
asking `gc.isenabled()` meanwhile sees False.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import gc

from racewatch.runtime import owned

try:
    from racewatch.runtime import _locks as _collections
except ImportError:  # no C compiler: the pure-Python pause below
    _collections = None
else:
    _collections.gc_hook()

# [the twin's state lock, the lock of _paused (the fallback's only)] (reentrant: a collection
# may start in _pause, see there), racewatch's own (never the program's), held by the forking
# thread through a fork (a fork child's at-fork hooks, threading's, run weakref callbacks that
# take the guard before reset_after_fork: one held by a thread the fork left behind hung
# there), taken last (racewatch's other locks are held around code that may enter the guard);
# new in a fork child
_locks = [owned.forksafe(last=True), owned.forksafe(last=True)]
_paused = [0, False]  # (fallback) threads inside or about to be, whether gc was enabled before


# Names bound as defaults: weakref callbacks use the guard at interpreter shutdown too, when
# this module's globals may already be gone.
def _pause(_locks=_locks, _paused=_paused, _isenabled=gc.isenabled, _disable=gc.disable,
           _acquire=owned.RLOCK_ACQUIRE, _release=owned.RLOCK_RELEASE):
    lock = _locks[1]
    _acquire(lock)
    try:
        if _paused[0] == 0:
            enabled = _isenabled()  # a collection may run here, and with it nested guards:
            _disable()              # they leave the count as they found it
            if _paused[0] == 0:
                _paused[1] = enabled
        _paused[0] += 1
    finally:
        _release(lock)


def _resume(_locks=_locks, _paused=_paused, _enable=gc.enable, _acquire=owned.RLOCK_ACQUIRE,
            _release=owned.RLOCK_RELEASE):
    lock = _locks[1]
    _acquire(lock)
    try:
        _paused[0] -= 1
        if _paused[0] == 0 and _paused[1]:
            _enable()
    finally:
        # Not `with` nor a hooked release: either may allocate, and so start a collection,
        # whose finalizers would run holding this lock. (On 3.12+ a collection scheduled
        # earlier still runs as _enable() returns, under this lock: see the docstring.)
        _release(lock)


if _collections is not None:
    _pause, _resume = _collections.gc_pause, _collections.gc_resume


class Guard:
    """`with guard:` holds the twin's lock, with collections paused (reentrant)."""

    __slots__ = ()

    def __enter__(self, _pause=_pause, _locks=_locks, _acquire=owned.RLOCK_ACQUIRE):
        _pause()
        _acquire(_locks[0])

    # The release allocates nothing (RLock's own, called without arguments): no collection
    # starts before the lock is free; one scheduled meanwhile runs as _resume() returns.
    def __exit__(self, *exc, _resume=_resume, _locks=_locks, _release=owned.RLOCK_RELEASE):
        _release(_locks[0])
        _resume()


guard = Guard()


def reset_after_fork():
    """In a fork child only this thread runs: the locks are new, collections as they were."""
    _locks[:] = [owned.forksafe(last=True), owned.forksafe(last=True)]
    if _collections is not None:
        _collections.gc_after_fork()
    elif _paused[0] and _paused[1]:
        gc.enable()
    _paused[:] = [0, False]
