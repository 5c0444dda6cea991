"""Run a script or module as __main__, instrumented, the way `python` runs it."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import builtins
import importlib.machinery
import os
import signal
import sys
import types

from racewatch import env
from racewatch.runtime import stacks

try:  # C: the program's frames start at the bottom of the stack, as under `python`
    from racewatch._asmain import call as _call_at_bottom, run_code as _run_code_at_bottom
    from racewatch._asmain import shutdown_threads
    from racewatch._asmain import syntax_error as _interpreter_syntax_error
except ImportError:  # not built: racewatch's runner frames stay below __main__
    def _call_at_bottom(function, args):
        return function(*args)

    def _run_code_at_bottom(code, globals):
        exec(code, globals)

    def _interpreter_syntax_error(path):
        return None

    def shutdown_threads(shutdown):
        """shutdown() (threading._shutdown), its exception printed about as python does;
        True if it raised."""
        try:
            shutdown()
        except BaseException as exc:  # noqa: BLE001 - ignored, as by the interpreter
            import traceback
            sys.stderr.write(f"Exception ignored in: {sys.modules.get('threading')!r}\n")
            traceback.print_exception(type(exc), exc, exc.__traceback__)
            return True
        return False


class UsageError(Exception):
    """The target cannot be run at all (missing file, no such module); one line for the user."""


def _is_own_frame(frame):
    name = frame.f_globals.get("__name__", "")
    return name == "racewatch" or name.startswith("racewatch.")


def _strip_own_frames(tb):
    while tb is not None and _is_own_frame(tb.tb_frame):
        tb = tb.tb_next
    return tb


def _fresh_main():
    """A `__main__` module as the interpreter creates it at startup."""
    main = types.ModuleType("__main__")
    annotations = {"__annotations__": {}} if env.MAIN_HAS_ANNOTATIONS else {}
    main.__dict__.update(annotations, __builtins__=builtins,
                         __loader__=importlib.machinery.BuiltinImporter, __spec__=None,
                         __package__=None)
    return main


class Outcome:
    """How the program ended: its exit status, and whether Ctrl-C ended it."""

    def __init__(self, status=0, interrupted=False):
        self.status = status
        self.interrupted = interrupted


def _system_exit_status(exc):
    """Python's own translation of SystemExit's code into an exit status."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")  # Python prints a non-int code and exits 1
    return 1


def run_guarded(function, *args):
    """Run `function(*args)` (the program) from the bottom of the stack, as the interpreter
    calls runpy; its Outcome, as the interpreter would end it."""
    return _run(lambda: _call_at_bottom(function, args))


def _run(execute):
    """Run `execute()`; print an uncaught exception the way the interpreter does."""
    try:
        execute()
    except SystemExit as exc:
        return Outcome(_system_exit_status(exc))
    except BaseException as exc:  # noqa: BLE001 - the program's own exception, reported as python would
        tb = _strip_own_frames(exc.__traceback__)
        exc = exc.with_traceback(tb)
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        if env.HAS_SYS_LAST_EXC:
            sys.last_exc = exc
        try:
            sys.excepthook(type(exc), exc, tb)
        except BaseException:  # noqa: BLE001 - a broken user excepthook: fall back like python
            sys.__excepthook__(type(exc), exc, tb)
        return Outcome(1, interrupted=isinstance(exc, KeyboardInterrupt))
    return Outcome(0)


stacks.BOUNDARIES.add(_run.__code__)  # frames below the program's own are racewatch's runner


def run_path(path, args, instrument, set_path0=True):
    """`python PATH ARGS`: a script file, or a directory / zip file with a __main__.py.
    `set_path0=False` leaves sys.path[0] to the caller (the interpreter's -P)."""
    if not os.path.exists(path):
        raise UsageError(f"can't open file {os.path.abspath(path)!r}: "
                         "[Errno 2] No such file or directory")
    sys.argv = [path, *args]
    if os.path.isdir(path) or not path.endswith(".py") and _is_zip(path):
        sys.path[0] = path
        return run_module("__main__", None, alter_argv=False)
    abspath = os.path.abspath(path)
    if set_path0:
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    try:
        with open(abspath, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise UsageError(f"can't open file {abspath!r}: [Errno {exc.errno}] {exc.strerror}")
    main = _fresh_main()
    cached = {"__cached__": None} if env.MODULES_HAVE_CACHED else {}
    main.__dict__.update(__file__=abspath, **cached,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", abspath))
    sys.modules["__main__"] = main

    def execute():
        code = instrument(abspath, lambda: _compile_main(source, abspath))
        _run_code_at_bottom(code, main.__dict__)

    return _run(execute)


def _compile_main(source, path):
    """The script's code; on a syntax error, the error `python PATH` itself would print."""
    try:
        return compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        error = exc
    raise _interpreter_syntax_error(path) or error


def _is_zip(path):
    import zipfile
    return zipfile.is_zipfile(path)


def run_module(name, args, alter_argv=True):
    """`python -m NAME ARGS`, through runpy as the interpreter itself does it."""
    if alter_argv:
        sys.argv = ["-m", *args]
        sys.path[0] = os.getcwd()
    sys.modules["__main__"] = _fresh_main()
    import runpy  # only here: a script run does not need it
    run_as_main = getattr(runpy, "_run_module_as_main", None)
    if run_as_main is None:  # pragma: no cover - every CPython 3.11-3.15 has it
        return _run(lambda: runpy.run_module(name, run_name="__main__", alter_sys=True))
    return run_guarded(run_as_main, name, alter_argv)


def exit_by_sigint():
    """Like the interpreter after an unhandled Ctrl-C: die of SIGINT, so shells see it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not hide the signal
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
