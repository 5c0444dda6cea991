"""One racewatch session: the runtime bound to the probes' names and the import hook installed."""

import atexit
import os
import threading

from racewatch import runtime
from racewatch.rewriter import hook, select


class Session:
    def __init__(self, options, roots):
        self.options = options
        self.api = runtime.load(options.runtime)
        runtime.install_api(self.api)
        self.selector = select.Selector(options.include, options.exclude, roots)
        self.instrumenter = hook.Instrumenter(
            options=(options.include, options.exclude), use_cache=options.cache)
        self.installed = hook.install(self.selector, self.instrumenter)

    def shutdown(self):
        """What the interpreter does after __main__ ends: wait for threads, run atexit.

        Done here, before racewatch reports, so races in late threads and atexit handlers
        are seen; the interpreter's own later pass then finds nothing left to do.
        """
        shutdown_threads = getattr(threading, "_shutdown", None)
        if shutdown_threads is not None:
            shutdown_threads()
        run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
        if run_exitfuncs is not None:
            run_exitfuncs()


def default_roots(script=None):
    """The user's own code: the script's directory and the current project."""
    roots = [select.project_root(os.getcwd())]
    if script is not None:
        roots.append(os.path.dirname(os.path.realpath(script)))
    return roots
