"""Side channel for identity tests: which code objects of a module racewatch instrumented."""

import dis
import types

# Any of these in a code object means the rewriter had something to probe (names a version
# lacks never occur); an independent oracle, deliberately not racewatch's own opcode tables.
ATTR_OPS = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR", "LOAD_SUPER_ATTR"}


def _function(value):
    """The plain function behind a method wrapper or decorator (lru_cache, ...), or None."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    for _ in range(10):  # bounded: a mock answers every getattr
        if isinstance(value, types.FunctionType):
            return value
        value = getattr(value, "__wrapped__", None)
    return None


def _functions(namespace, module_name, seen):
    """Functions defined in a module namespace or in its classes, nested classes included."""
    for value in list(vars(namespace).values()):
        if id(value) in seen:
            continue
        seen.add(id(value))
        parts = (value.fget, value.fset, value.fdel) if isinstance(value, property) else (value,)
        yield from filter(None, map(_function, parts))
        if isinstance(value, type) and value.__module__ == module_name:
            yield from _functions(value, module_name, seen)


def _codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def report(module):
    """`{"instrumented": n, "code_objects": n, "missed": [qualname, ...]}` for `module`.

    Only code compiled from the module's own file counts (a namedtuple's methods, say, are
    another module's code). `missed` lists code with attribute accesses that has no probes.
    """
    from racewatch.rewriter.instrument import is_instrumented

    codes = {}
    for function in _functions(module, module.__name__, set()):
        for code in _codes(function.__code__):
            if code.co_filename == module.__file__:
                codes[id(code)] = code
    instrumented = [c for c in codes.values() if is_instrumented(c)]
    missed = sorted(c.co_qualname for c in codes.values() if not is_instrumented(c)
                    and any(i.opname in ATTR_OPS for i in dis.get_instructions(c)))
    return {"instrumented": len(instrumented), "code_objects": len(codes), "missed": missed}
