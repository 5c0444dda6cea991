"""Helpers of the same_profile* programs: what cProfile and sys.setprofile see of a call."""

import cProfile
import pstats
import sys


def print_cprofile(function, *args):
    """Each function cProfile saw during `function(*args)`, with its call count."""
    profile = cProfile.Profile()
    profile.enable()
    function(*args)
    profile.disable()
    for (_, _, name), (_, ncalls, *_) in sorted(pstats.Stats(profile).stats.items(),
                                                 key=lambda item: item[0][2]):
        print("cProfile", name, ncalls)


def print_setprofile(function, *args):
    """Each (event, owner type, function) sys.setprofile saw during `function(*args)`."""
    events = {}

    def count(frame, event, arg):
        name = getattr(arg, "__qualname__", frame.f_code.co_qualname)
        owner = type(getattr(arg, "__self__", None)).__qualname__
        events[event, owner, name] = events.get((event, owner, name), 0) + 1

    sys.setprofile(count)
    function(*args)
    sys.setprofile(None)
    for key in sorted(events):
        print("setprofile", *key, events[key])
