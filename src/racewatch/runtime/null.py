"""Probes that do nothing: bound once racewatch stops, so instrumented code keeps running."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch import runtime


class Token:
    """A token probe that records nothing: code whose site belongs to no engine (a code
    object unpickled in another process, code loaded with no session)."""

    __slots__ = ()

    def __contains__(self, obj):
        return False

    def __invert__(self):
        return None

    def __setitem__(self, key, obj):
        pass

    def __getitem__(self, key):
        return self  # a call site's `token[callee][arg0] = arg1`: nothing either


class LineToken:
    """A merged probe's token with no engine: it only counts the run of its line."""

    __slots__ = ("hit",)

    def __init__(self, hit):
        self.hit = hit

    def __contains__(self, obj):
        ~self.hit
        return False

    def __invert__(self):
        ~self.hit

    def __setitem__(self, key, obj):
        ~self.hit

    def __reduce__(self):
        return Token, ()  # a site id means nothing in another process


def install():
    """Bind the do-nothing probes and switch the engine's tokens off; `runtime.active`
    becomes None (annotations stop too)."""
    if runtime.engine is not None:
        runtime.engine.enable(False)
    runtime.active = None
