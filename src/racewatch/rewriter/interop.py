"""Every coupling to other tools' private hooks (runpy, pytest's assertion rewriting), checked.

Each seam first checks that the private name it needs exists with the shape it expects;
where it does not, racewatch warns once and carries on without that seam.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
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
    # PYVERSIONS: (run_name, fname) -> (code, fname) up to 3.12; (fname) -> code on 3.13 and
    # 3.14; (fname, module) -> code from 3.15.
    if _arguments(real) not in (("run_name", "fname"), ("fname",), ("fname", "module")):
        warn("runpy.run_path code is not instrumented: "
             "runpy._get_code_from_file is not as expected")
        return
    if getattr(real, "_racewatch", False):
        return

    def _get_code_from_file(*args):
        result = real(*args)
        code, fname = result if isinstance(result, tuple) else (result, args[0])
        if isinstance(fname, str) and fname.endswith(".py"):
            code = instrument(fname, code)
        return (code, fname) if isinstance(result, tuple) else code

    _get_code_from_file._racewatch = True
    runpy._get_code_from_file = _get_code_from_file


# -- pytest: its assertion-rewriting hook is a finder and loader with no get_code ---------------

def foreign_loader(loader, instrumenter):
    """A loader that instruments what `loader` would run, for loaders without get_code that
    racewatch knows (pytest's AssertionRewritingHook); None for any other loader."""
    rewrite = sys.modules.get("_pytest.assertion.rewrite")
    hook_type = getattr(rewrite, "AssertionRewritingHook", None)
    if hook_type is None or not isinstance(loader, hook_type):
        return None
    rewrite_test = getattr(rewrite, "_rewrite_test", None)
    if _arguments(rewrite_test) != ("fn", "config") or not hasattr(loader, "config"):
        warn("test modules are not instrumented: pytest's assertion rewriting is not as "
             "expected (run with --assert=plain to instrument them)")
        return None
    return AssertionRewritingLoader(loader, rewrite_test, _variant(instrumenter, loader.config))


_variants = {}


def _variant(instrumenter, config):
    """The instrumenter with its own cache key: the code it rewrites is pytest's, not the file's."""
    variant = _variants.get(id(instrumenter))
    if variant is None or variant[0] is not instrumenter:
        import copy

        import pytest
        from racewatch.rewriter import cache
        try:
            pass_hook = config.getini("enable_assertion_pass_hook")
        except ValueError:
            pass_hook = None
        twin = copy.copy(instrumenter)
        twin.fingerprint = cache.fingerprint(instrumenter.fingerprint, "pytest-assertions",
                                             pytest.__version__, pass_hook)
        variant = _variants[id(instrumenter)] = (instrumenter, twin)
    return variant[1]


class AssertionRewritingLoader:
    """Runs pytest's assertion-rewritten code for a test module, instrumented by racewatch."""

    def __init__(self, hook, rewrite_test, instrumenter):
        self._hook = hook
        self._rewrite_test = rewrite_test
        self._instrumenter = instrumenter

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from pathlib import Path
        path = module.__spec__.origin
        names = getattr(self._hook, "_rewritten_names", None)
        if isinstance(names, dict):  # what pytest's own exec_module records
            names[module.__name__] = Path(path)
        code = self._instrumenter.code_for(
            path, lambda: self._rewrite_test(Path(path), self._hook.config)[1])
        # the program's builtins, not racewatch's copy (exec would give it the caller's)
        module.__dict__.setdefault("__builtins__", sys.modules["builtins"].__dict__)
        exec(code, module.__dict__)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: pytest's hook answers
        return getattr(self._hook, name)


def pytest_stack_boundaries():
    """Code objects of pytest's frames that call test and fixture functions: report stacks
    stop there instead of listing pytest's machinery. Cosmetic, so a missing name is skipped."""
    return _codes((("_pytest.python", "pytest_pyfunc_call"),
                   ("_pytest.fixtures", "call_fixture_func"),
                   ("_pytest.fixtures", "_teardown_yield_fixture"),
                   ("_pytest.unittest", "TestCaseFunction.runtest")))


def unittest_stack_boundaries():
    """unittest's frames that call a TestCase's test method, setUp, tearDown and cleanups:
    stacks of unittest-style tests stop at the test's own code (once unittest.case is
    imported)."""
    return _codes(("unittest.case", f"TestCase.{name}")
                  for name in ("_callTestMethod", "_callSetUp", "_callTearDown", "_callCleanup"))


def _codes(places):
    found = []
    for module, path in places:
        target = sys.modules.get(module)
        for name in path.split("."):
            target = getattr(target, name, None)
        code = getattr(target, "__code__", None)
        if code is not None:
            found.append(code)
    return found
