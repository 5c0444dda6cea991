"""Imports as synchronization: a module's top-level code happens-before every thread that an
import (or a lazy import's first use) hands the module to. (The C runtime's import tokens do
the same in their slots; these serve the pure-Python one.)"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys
from types import FunctionType, ModuleType

from racewatch import runtime


def published(namespace):
    """What the module of `namespace` did at the top level happens-before its importers."""
    engine = runtime.active
    if engine is not None:
        engine.happens_before(namespace)


def imported(value, site):
    """After an import handed `value` (a module, or what `from m import` / a lazy import
    bound) to this thread: the top-level code of its module happened before. The import
    system orders the two (it publishes a module once its code ran, under its locks); only
    types are looked at, never attributes, so an unresolved lazy object stays unresolved."""
    engine = runtime.active
    if engine is None:
        return
    kind = type(value)
    if issubclass(kind, ModuleType):
        namespace = value.__dict__
    elif kind is FunctionType:
        namespace = value.__globals__
    elif issubclass(kind, type):
        module = sys.modules.get(value.__module__)
        namespace = getattr(module, "__dict__", None)
    else:
        return
    if namespace is not None:
        engine.happens_after(namespace)
