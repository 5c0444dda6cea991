"""The builtins racewatch's own code calls: a copy of the builtins namespace taken at its import.

Every racewatch module binds this copy as its `__builtins__` before it defines anything
(`from racewatch.pristine import __builtins__`), so its functions look `len`, `isinstance`...
up there: a program that later replaces one in `builtins` (`builtins.len = lru_cache(len)`, as
CPython's test_functools does) never runs inside racewatch. A dict of their own rather than
names bound in module globals: at interpreter shutdown module globals are set to None, but
each function keeps its builtins dict, and a module's `__builtins__` is left in place.
"""

import builtins

_HEAPTYPE = 1 << 9

# Instances of classes written in Python (site's `exit` and `help`, whatever a program stored
# in builtins before racewatch started) are left out: racewatch calls none, and a copy would
# keep them alive after the program deletes them.
__builtins__ = {name: value for name, value in vars(builtins).items()
                if not type(value).__flags__ & _HEAPTYPE}
