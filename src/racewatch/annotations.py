"""Annotations for synchronization racewatch cannot see; no-ops when it is not running."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py

def happens_before(obj):
    """Everything this thread did so far happens-before a later `happens_after(obj)`."""
    from racewatch import runtime
    if runtime.active is not None:
        runtime.active.happens_before(obj)


def happens_after(obj):
    """What follows in this thread happens-after every earlier `happens_before(obj)`."""
    from racewatch import runtime
    if runtime.active is not None:
        runtime.active.happens_after(obj)
