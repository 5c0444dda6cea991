"""Names the rewriter gives a meaning: container methods and builtin accessors."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
# Methods of builtin containers (list, dict, set, deque, bytearray) -> the site kind of loading
# them (sites.KINDS), by how they touch the
# container's shape. Single calls CPython documents as atomic or internally locked are atomic
# accesses (they never race with each other, only with plain ones); sort/reverse/index/count
# are not. On an object that is not a builtin container, the load is an attribute read.
CONTAINER_METHODS = {
    **{name: "method_atomic_write" for name in (
        "append", "extend", "insert", "pop", "remove", "clear", "setdefault", "popitem",
        "update", "add", "discard", "appendleft", "popleft", "extendleft", "rotate",
        "difference_update", "intersection_update", "symmetric_difference_update")},
    **{name: "method_atomic_read" for name in (
        "get", "copy", "keys", "values", "items", "issubset", "issuperset", "isdisjoint",
        "union", "intersection", "difference", "symmetric_difference")},
    **{name: "method_write" for name in ("sort", "reverse")},
    **{name: "method_read" for name in ("index", "count")},
}

# Builtins whose calls read or write their arguments' state (runtime/locations.ACCESSORS
# says how). Call sites get a probe only in code that loads one of these names as a global.
BUILTIN_ACCESSORS = frozenset((
    "len", "list", "tuple", "sorted", "set", "frozenset", "sum", "min", "max", "any", "all",
    "enumerate", "reversed", "iter", "dict", "bytes", "bytearray", "zip", "map", "filter",
    "getattr", "hasattr", "setattr", "delattr",
    "object"))  # object.__setattr__ / object.__delattr__
