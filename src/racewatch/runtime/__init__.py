"""Choose the hot-path implementation and bind it to the names rewritten code calls."""

import builtins

from racewatch.rewriter import opcodes


def install_api(impl):
    """Bind `impl`'s hot-path functions to the builtins names probes load."""
    for function in opcodes.API_FUNCTIONS:
        setattr(builtins, opcodes.api_name(function), getattr(impl, function))


def uninstall_api():
    for function in opcodes.API_FUNCTIONS:
        builtins.__dict__.pop(opcodes.api_name(function), None)
