"""What each probe site is, as one byte the runtime dispatches on (rewriter -> runtime contract).

The probe call says read or write; the kind says what the location is and how to find it.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
NONE = 0            # unregistered: the object passed is the location's owner
ATTR = 1            # o.name: skipped for instances of static types without a __dict__;
                    # a module's attribute is its global
SUPER = 2           # super().name: the class attribute the lookup finds
GLOBAL = 3          # a module global of the calling frame (no object is passed)
CELL = 4            # a closure cell (the cell is passed)
ITEM = 5            # container[key]: one location per dict key / list index
ITEM_DELETE = 6     # del container[key]: the key/index and the container's shape
SLICE = 7           # container[a:b] (read or assign): the shape
CONTAINS = 8        # key in container: the key of a dict, the shape of anything else
ITER = 9            # iter(container) / for x in container: a bulk read (shape and items)
EQ = 10             # a == b, a != b: the shape of each container operand
CALL = 11           # a call: if the callee is a builtin accessor (len, getattr...), its access
METHOD_READ = 12            # container.method: a plain read of the shape (list.index ...)
METHOD_WRITE = 13           # a plain write of the shape (list.sort ...)
METHOD_ATOMIC_READ = 14     # an atomic read of the shape (dict.get, set.copy ...)
METHOD_ATOMIC_WRITE = 15    # an atomic write of the shape (list.append, dict.setdefault ...)
# 16 was the lock call-site probe: locks report their own events now (runtime/lockhooks.py)
IMPORTED = 17       # what an import handed over (a module, or what it bound): an acquire of
                    # its module's namespace
INITIALIZED = 18    # the end of a module's top-level code: a release of its namespace
CONCAT = 19         # a + b (a bulk read of each list-like), a += b (extends a list-like a)
ATOMIC = 20         # an atomic access of the object passed, with the key passed (no rewritten
                    # code makes one: how replayed traces spell an atomic access)

# Stored last in the constants of every code object with sites: how the rewriter knows code it
# rewrote (token probes name no API function), and the runtime code whose accesses it sees (a
# property's getter). No source constant can be this string's equal by accident of the
# compiler: it is not an identifier.
MARKER = "@racewatch:instrumented"
