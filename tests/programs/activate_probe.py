"""Prints whether __main__'s code and a function of it are instrumented, and what racewatch
modules are loaded (none when racewatch is off)."""

import sys


def f(o):
    return o.x


names = sorted(m for m in sys.modules if m == "racewatch" or m.startswith("racewatch."))
if names:
    from racewatch.rewriter.instrument import is_instrumented
    print("instrumented", is_instrumented(f.__code__), is_instrumented(sys._getframe().f_code))
else:
    print("racewatch not loaded")
