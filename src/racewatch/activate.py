"""Startup activation: what a0_racewatch.pth runs when -X race or PYTHONRACE asks for racewatch.

`python -X race SCRIPT` and `python -X race -m MOD` hand their main module to racewatch's
runner (mainhook.py), which ends the process as `racewatch run` does. Where there is no main
module to take over (`-c`, stdin, the REPL, `-i`), an atexit handler registered before any
other (so it runs last) prints the summary, and only when races must turn an exit status of
0 into `exitcode` does it flush and `os._exit`: the program's own status, output and atexit
handlers are otherwise left as they were.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

_started = False
_taken_over = False  # the main runner ends the process; the atexit fallback stands down
_exit_requests = []  # codes passed to sys.exit, for the fallback (it cannot see the status)


def startup():
    """Start racewatch for this process before any user module is imported. Called by the
    .pth line only when -X race or PYTHONRACE is set; a second call (site may process the
    same site-packages twice) does nothing."""
    global _started
    if _started:
        return
    _started = True
    from racewatch import config
    try:
        found = config.requested()
        if not found:
            return  # PYTHONRACE=off, -X race=0, or PYTHONRACE under -E
        kind, target = _main_kind()
        if _is_racewatch_command(kind, target):
            return  # `racewatch run` starts its own session (and reads PYTHONRACE itself)
        _start(config, found, kind, target)
    except config.ConfigError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback out of site.py
        _fail(f"cannot start: {type(exc).__name__}: {exc}")


def _fail(message):
    sys.stderr.write(f"racewatch: {message}\n")
    sys.stderr.flush()
    os._exit(2)  # SystemExit would escape site.py as a fatal error


def _main_kind():
    """What the interpreter will run, from sys.argv as it stands before site finishes:
    ('script', PATH), ('module', NAME), ('command', None) or ('interactive', None)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-c":
        return "command", None
    if argv0 == "-m":
        return "module", _module_name()
    if argv0 in ("", "-"):
        return "interactive", None
    return "script", argv0


def _module_name():
    """NAME of `-m NAME`: sys.argv holds `-m` and the program's arguments, sys.orig_argv all."""
    orig = getattr(sys, "orig_argv", [])
    index = len(orig) - len(sys.argv)
    if not 0 < index < len(orig):
        return None
    name = orig[index]
    return name.split("m", 1)[1] if name.startswith("-") else name  # `-mNAME`, `-ImNAME`


def _is_racewatch_command(kind, target):
    if kind == "script":
        return os.path.basename(target) == "racewatch"
    return kind == "module" and target in ("racewatch", "racewatch.__main__")


def _start(config, found, kind, target):
    import atexit
    atexit.register(_at_exit)  # first registered, last run: after the program's own handlers
    script = target if kind == "script" else None
    start = os.path.dirname(os.path.abspath(script)) if script is not None else os.getcwd()
    options = config.resolve(start)
    from racewatch.session import Session, default_roots
    session = Session(options, default_roots(script))
    session.lead()  # unless this process was itself started under a racewatch run
    # Children inherit the request: subprocesses, multiprocessing workers (all start methods).
    os.environ["PYTHONRACE"] = " ".join(text for text, _ in found)
    from racewatch.runtime import interceptors
    interceptors.on_import("runpy", lambda runpy: _instrument_run_path(session))
    if kind in ("script", "module") and not sys.flags.inspect and _take_over(session, script):
        return
    _watch_exit()


def _take_over(session, script):
    from racewatch.mainhook import MainHook
    plain = script is not None and os.path.isfile(script) and (
        script.endswith(".py") or not _is_zip(script))
    return MainHook(session, script if plain else None, _stand_down).install()


def _is_zip(path):
    import zipfile
    return zipfile.is_zipfile(path)


def _stand_down():
    global _taken_over
    _taken_over = True


def _instrument_run_path(session):
    """runpy.run_path of a user's file runs instrumented code (a spawned child's __mp_main__)."""
    from racewatch.rewriter import interop

    def instrument(path, code):
        path = os.path.abspath(path)
        if not session.active or not session.selector.wants("__main__", path):
            return code
        if code.co_filename != path:  # the cache keeps code compiled under the absolute name
            return session.instrumenter.code_for(path, lambda: _compile(path))
        return session.instrumenter.code_for(path, lambda: code)

    interop.instrument_run_path(instrument)


def _compile(path):
    with open(path, "rb") as f:
        return compile(f.read(), path, "exec", dont_inherit=True)


def _watch_exit():
    """Remember sys.exit codes: at atexit the fallback has no other way to see the status."""
    real_exit = sys.exit

    def exit(status=None):
        _exit_requests.append(status)
        real_exit(status)

    exit.__doc__ = real_exit.__doc__
    sys.exit = exit


def _observed_status():
    if getattr(sys, "last_exc", None) is not None or getattr(sys, "last_value", None) is not None:
        return 1  # an uncaught exception was printed
    code = _exit_requests[-1] if _exit_requests else None
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _at_exit():
    from racewatch import session as sessions
    current = sessions.current
    if _taken_over or current is None or current.finished:
        return
    status = _observed_status()
    final = current.finish(status)
    if final != status:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not keep the status
                pass
        os._exit(final)
