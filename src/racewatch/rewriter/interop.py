"""Every coupling to other tools' private hooks (runpy, pytest's assertion rewriting), checked.

Each seam first checks that the private name it needs exists with the shape it expects;
where it does not, racewatch warns once and carries on without that seam.
"""

import sys

_warned = set()


def warn(what):
    """One warning per missing seam, on stderr (never an exception)."""
    if what not in _warned:
        _warned.add(what)
        sys.stderr.write(f"racewatch: warning: {what}\n")


def _arguments(function):
    code = getattr(function, "__code__", None)
    return code.co_varnames[:code.co_argcount] if code is not None else None


# -- runpy: how the interpreter runs `-m MODULE` and directory / zip mains ----------------------

def runpy_main():
    """The runpy module if its `_run_module_as_main(mod_name, alter_argv)` is as expected:
    the interpreter looks that name up on runpy each time it runs a main module."""
    import runpy
    if _arguments(getattr(runpy, "_run_module_as_main", None)) != ("mod_name", "alter_argv"):
        warn("__main__ is not instrumented: runpy._run_module_as_main is not as expected")
        return None
    return runpy


def instrument_run_path(instrument):
    """Make runpy.run_path (multiprocessing's `__mp_main__` in a spawned child) hand back
    `instrument(path, code)` for a source file; `instrument` decides whether to rewrite."""
    import runpy
    real = getattr(runpy, "_get_code_from_file", None)
    if _arguments(real) not in (("run_name", "fname"), ("fname",)):  # PYVERSIONS: 3.13 drops run_name
        warn("runpy.run_path code is not instrumented: runpy._get_code_from_file is not as expected")
        return
    if getattr(real, "_racewatch", False):
        return

    def _get_code_from_file(*args):
        code, fname = real(*args)
        if isinstance(fname, str) and fname.endswith(".py"):
            code = instrument(fname, code)
        return code, fname

    _get_code_from_file._racewatch = True
    runpy._get_code_from_file = _get_code_from_file
