"""One racewatch session: runtime bound to the probes, interceptors and import hook installed."""

import atexit
import collections
import os
import threading

from racewatch import runtime
from racewatch.rewriter import hook, select, sites
from racewatch.runtime import interceptors, locations, report, superattr, threads


class Session:
    def __init__(self, options, roots):
        self.options = options
        self.engine = engine = runtime.load(options.runtime)
        engine.current_tid()  # the thread starting racewatch is thread 0
        self.reporter = report.Reporter(options, engine)
        engine.configure(on_race=self.reporter.on_race, history_full=options.history == "full",
                         ignored_types=interceptors.ignored_types(),
                         proxy_types=interceptors.proxy_types(), super_owner=superattr.owner,
                         shape=locations.SHAPE, accessors=locations.ACCESSORS,
                         deque_type=collections.deque, defaultdict_type=collections.defaultdict)
        sites.SITES.listeners.append(
            lambda base, records: engine.register_sites(base, sites.kind_bytes(records)))
        runtime.install_api(engine)
        os.register_at_fork(after_in_child=self._after_fork)
        self.selector = select.Selector(options.include, options.exclude, roots)
        self.instrumenter = hook.Instrumenter(
            options=(options.include, options.exclude), use_cache=options.cache)
        self.installed = hook.install(self.selector, self.instrumenter)
        interceptors.install(engine)  # after the hook: it patches what the hook instruments too

    def _after_fork(self):
        self.engine.reset_after_fork()
        threads.reset()

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

    def finish(self, status):
        """The summary of races found; returns the exit status the process should have."""
        return self.reporter.finish(status)


def default_roots(script=None):
    """The user's own code: the script's directory and the current project."""
    roots = [select.project_root(os.getcwd())]
    if script is not None:
        roots.append(os.path.dirname(os.path.realpath(script)))
    return roots
