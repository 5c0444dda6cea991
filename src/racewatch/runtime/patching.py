"""Patches racewatch makes to the standard library, each undone on stop, each keeping the
original's name, qualified name, module, doc and signature (so it pickles as the original)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import functools
import types

_patches = []  # (owner, name, original) to undo
engine = None  # the hot-path module the patches report to, while installed


def patch(owner, name, replacement):
    """Set owner.name to `replacement`; returns the original."""
    original = owner.__dict__[name]
    if isinstance(replacement, types.FunctionType):
        functools.update_wrapper(replacement, original)
    elif isinstance(replacement, staticmethod) and isinstance(original, staticmethod):
        functools.update_wrapper(replacement.__func__, original.__func__)
    _patches.append((owner, name, original))
    setattr(owner, name, replacement)
    return original


def unpatched(owner, name):
    """What `owner.name` was before racewatch patched it."""
    for patched_owner, patched_name, original in _patches:
        if patched_owner is owner and patched_name == name:
            return original
    return getattr(owner, name)


def undo():
    """Put every original back, the latest patch first."""
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)
