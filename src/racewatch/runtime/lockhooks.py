"""Locks report their own acquire and release, whoever calls them: the lock hooks (C, or their
pure-Python fallback) bound to the engine in use (and queue.SimpleQueue its puts and gets)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch.runtime import stacks

try:
    from racewatch.runtime import _locks as _hooks
except ImportError:  # no C compiler: the same hooks in Python (pylocks.py)
    from racewatch.runtime import pylocks as _hooks


def install(engine, track_creation=True):
    """Lock events go to `engine` (its C sink if it has one and the hooks are C); creation
    stacks are recorded when `track_creation` (for lock-order reports)."""
    sink = getattr(engine, "lock_sink", None) if _hooks.__name__.endswith("_locks") else None
    _hooks.install(sink or (engine.lock_acquired, engine.lock_released,
                            engine.happens_before, engine.happens_after), track_creation)


def uninstall():
    _hooks.uninstall()


def hook_simple_queue():
    """_queue.SimpleQueue's put and get report a put -> get edge (the C type stays itself)."""
    _hooks.hook_simple_queue()


def hide(lock):
    """`lock`'s acquire and release report nothing from now on (racewatch's own locks, and
    threading's bookkeeping of threads, which racewatch models itself)."""
    _hooks.hide(lock)


def mark_inner(lock):
    """`lock` belongs to a primitive racewatch models by its semantics: from now on its
    acquire and release order nothing, but code run holding it is mutually excluded."""
    _hooks.mark_inner(lock)


def after_fork():
    _hooks.after_fork()


def creation_of(address):
    """The creation stack of the live lock at `address` as report frames, or None if its
    creation was not seen (made before racewatch started, or without tracking)."""
    pairs = _hooks.creation_of(address)
    return stacks.from_code_lines(pairs) if pairs else None
