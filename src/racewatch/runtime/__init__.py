"""Choose the hot-path implementation and bind it to the names rewritten code calls."""

import builtins
import importlib
import sys

from racewatch.rewriter import opcodes


def load(name):
    """The hot-path module for the `runtime` option: `c` (falls back to `python`) or `python`."""
    if name == "c":
        try:
            return importlib.import_module("racewatch.runtime._fast")
        except Exception as exc:  # noqa: BLE001 - a broken build must not stop the program
            sys.stderr.write(f"racewatch: C runtime unavailable ({exc}); "
                             "using the pure-Python runtime\n")
    return importlib.import_module("racewatch.runtime.api")


# The hot-path module bound to the probes' names, or None when racewatch is not running.
active = None


def install_api(impl):
    """Bind `impl`'s hot-path functions to the builtins names probes load."""
    global active
    active = impl
    for function in opcodes.API_FUNCTIONS:
        setattr(builtins, opcodes.api_name(function), getattr(impl, function))


def uninstall_api():
    global active
    active = None
    for function in opcodes.API_FUNCTIONS:
        builtins.__dict__.pop(opcodes.api_name(function), None)
