"""Instrument a module that was imported before the hook: its functions get rewritten code.

The import hook rewrites a module's code as it loads. A module already loaded (racewatch
imports threading, weakref, functools, enum, typing... itself, before its hook) keeps its code,
unless the code of each of its function objects is replaced here by the rewritten code of the
same source: compiled again, checked equal to what the function runs (a source edited since
its import is left alone), then swapped by `__code__`. Every function object of the process
whose code belongs to the module is found (methods, closures made at import, the functions
behind decorators). Top-level code has run already: its accesses are not seen.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import gc
import importlib.util
import sys
from types import CodeType, FunctionType


def source_path(module):
    """The module's source file, or None (a built-in, frozen or extension module)."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return None
    if path.endswith(".pyc"):
        try:
            path = importlib.util.source_from_cache(path)
        except ValueError:
            return None
    return path if path.endswith(".py") else None


def instrument_loaded(module, instrumenter):
    """Rewrite the functions of `module` in place; how many function objects got new code."""
    path = source_path(module)
    if path is None:
        return 0
    try:
        with open(path, "rb") as f:
            source = f.read()
        original = compile(source, path, "exec", dont_inherit=True,
                           optimize=sys.flags.optimize)
    except (OSError, SyntaxError, ValueError):
        return 0
    rewritten = instrumenter.code_for(path, lambda: original)
    before = _by_key(original)
    after = _by_key(rewritten)
    changed = 0
    for obj in gc.get_objects():
        if type(obj) is not FunctionType:
            continue
        code = obj.__code__
        if code.co_filename != path:
            continue
        key = _key(code)
        if key in after and before.get(key) == code and after[key] is not code:
            obj.__code__ = after[key]
            changed += 1
    return changed


def _key(code):
    return code.co_qualname, code.co_firstlineno


def _by_key(code):
    """{(qualname, first line): code object} over `code` and every code nested in it."""
    found = {}
    stack = [code]
    while stack:
        current = stack.pop()
        found.setdefault(_key(current), current)
        stack.extend(c for c in current.co_consts if isinstance(c, CodeType))
    return found
