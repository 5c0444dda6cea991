"""Locks report their own acquire and release, whoever calls them: the C lock hooks, bound
to the engine in use (and queue.SimpleQueue its puts and gets)."""

from racewatch.runtime import stacks

try:
    from racewatch.runtime import _locks
except ImportError:  # no C compiler: see fallback.py
    _locks = None


def install(engine, track_creation=True):
    """Lock events go to `engine` (its C sink if it has one); creation stacks are recorded
    when `track_creation` (for lock-order reports)."""
    sink = getattr(engine, "lock_sink", None) or (engine.lock_acquired, engine.lock_released,
                                                  engine.happens_before, engine.happens_after)
    if _locks is not None:
        _locks.install(sink, track_creation)


def uninstall():
    if _locks is not None:
        _locks.uninstall()


def hook_simple_queue():
    """_queue.SimpleQueue's put and get report a put -> get edge (the C type stays itself)."""
    if _locks is not None:
        _locks.hook_simple_queue()


def hide(lock):
    """`lock`'s acquire and release report nothing from now on (racewatch's own locks, and
    threading's bookkeeping of threads, which racewatch models itself)."""
    if _locks is not None:
        _locks.hide(lock)


def mark_inner(lock):
    """`lock` belongs to a primitive racewatch models by its semantics: from now on its
    acquire and release order nothing, but code run holding it is mutually excluded."""
    if _locks is not None:
        _locks.mark_inner(lock)


def after_fork():
    if _locks is not None:
        _locks.after_fork()


def creation_of(address):
    """The creation stack of the live lock at `address` as report frames, or None if its
    creation was not seen (made before racewatch started, or without tracking)."""
    pairs = _locks.creation_of(address) if _locks is not None else None
    return stacks.from_code_lines(pairs) if pairs else None
