"""Every process reports on its own: a multiprocessing child ends with its summary and status."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys

from racewatch.runtime import interceptors


def install(current):
    """Wrap the child side of multiprocessing (all start methods) once it is imported;
    `current()` is the session running in the process then."""
    interceptors.on_import("multiprocessing.process", lambda module: _patch(module, current))


def _patch(module, current):
    # BaseProcess._bootstrap runs the child's target and returns its exit status, which
    # spawn hands to sys.exit and fork / forkserver to os._exit (no atexit there): the one
    # place every start method passes through after the child's threads are joined.
    cls = getattr(module, "BaseProcess", None)
    real = getattr(cls, "__dict__", {}).get("_bootstrap")
    if real is None or getattr(real, "_racewatch", False):
        if real is None:
            sys.stderr.write("racewatch: warning: multiprocessing children cannot report "
                             "their own summary (no BaseProcess._bootstrap)\n")
        return

    def _bootstrap(self, *args, **kwargs):
        status = real(self, *args, **kwargs)
        session = current()
        if session is None or not session.active or type(status) is not int:
            return status
        return session.finish(status)

    _bootstrap._racewatch = True
    cls._bootstrap = _bootstrap
