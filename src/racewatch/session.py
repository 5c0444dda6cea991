"""One racewatch session: runtime bound to the probes, interceptors and import hook installed."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch import forkfirst  # noqa: F401, I001 - first: before threading's at-fork hook
import atexit
import collections
import os
import sys
import threading

from racewatch import descendants, processes, runtime
from racewatch.rewriter import hook, project, select, sites
from racewatch.runtime import interceptors, lockhooks, locations, patching, report, threads

# The session of this process, whoever started it (racewatch run, -X race / PYTHONRACE,
# pytest --race, racewatch.start()); None when racewatch is not running here.
current = None


class Session:
    def __init__(self, options, roots, warnings=None):
        """`warnings`: a list that collects racewatch's warnings (pytest shows them in its
        summary); None: they go to stderr at once."""
        global current
        self.options = options
        self.warnings = warnings
        self._warned = set()
        if options.strip_path_prefix is None:  # paths relative to the project root, as pytest's
            options.strip_path_prefix = os.path.join(roots[0], "") if roots else ""
        self.finished = False  # the summary was printed: later finish() calls change nothing
        self.race = options.race
        cover = cover_mode(options)
        self.engine = self.reporter = self.collector = self.tree = None
        if self.race:
            self._start_race()
        if cover:
            from racewatch.cover.collector import Collector
            self.collector = Collector(cover, options.runtime, options.cover_flush)
            self.collector.bind()
        self.selector = select.Selector(options.include, options.exclude, roots)
        self.instrumenter = hook.Instrumenter(
            options=(options.include, options.exclude), use_cache=options.cache,
            race=self.race, line_probes=bool(cover),
            chained=self.collector is not None and self.collector.chains)
        self.installed = hook.install(self.selector, self.instrumenter, self.warn)
        self.warn(select.imported_before_warning(select.imported_before(self.selector)))
        if self.race:
            self._hooks()
            processes.install(_current)
        self.active = True
        current = self

    def lead(self):
        """This process starts a run (`racewatch run`, the first -X race / PYTHONRACE process,
        pytest --race): the processes it starts under racewatch record their findings for it
        to sum up at its end, and keep their own exit status."""
        if self.race and self.tree is None:
            self.reporter.tree = self.tree = descendants.Tree.lead()

    def warn(self, text):
        """A warning for the user, once, where they will see it."""
        if not text or text in self._warned:
            return
        self._warned.add(text)
        if self.warnings is not None:
            self.warnings.append(text)
        else:
            sys.stderr.write(f"racewatch: warning: {text}\n")

    def _hooks(self):
        """Locks report their events, then the primitives are patched (after the import hook:
        it patches what it instruments)."""
        lockhooks.install(self.engine, track_creation=self.reporter.graph is not None)
        interceptors.install(self.engine)

    def _start_race(self):
        options = self.options
        self.engine = engine = runtime.load(options.runtime)
        engine.current_tid()  # the thread starting racewatch is thread 0
        self.reporter = report.Reporter(options, engine)
        self.reporter.tree = self.tree = descendants.Tree.join()  # started under a racewatch run
        engine.configure(on_race=self.reporter.on_race, history_full=options.history == "full",
                         ignored_types=interceptors.ignored_types(),
                         shape=locations.SHAPE, items=locations.ITEMS,
                         accessors=locations.ACCESSORS,
                         deque_type=collections.deque, defaultdict_type=collections.defaultdict,
                         lock_order=self.reporter.graph and self.reporter.graph.on_edges)
        sites.SITES.listeners.append(
            lambda base, records: engine.register_sites(base, sites.kind_bytes(records)))
        runtime.install_api(engine)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        lockhooks.after_fork()
        interceptors.hide_thread_bookkeeping()  # threading made new ones in the child
        self.engine.reset_after_fork()
        threads.reset()
        self.reporter.reset()
        self.finished = False
        if self.active:
            self.engine.enable(True)  # forkfirst.py switched the probes off until now

    def stop(self):
        """Stop detecting: modules imported later are left alone, and probes already in
        instrumented code do nothing (they stay bound, so that code keeps running)."""
        if not self.active:
            return
        from racewatch.runtime import null
        self.installed.uninstall()
        if self.race:
            interceptors.uninstall()
            lockhooks.uninstall()
        null.install()
        if self.collector is not None:
            self.collector.unbind()  # coverage stops with racewatch
        self.active = False

    def resume(self):
        """Detect again after stop(), with the same state and reports."""
        if self.active:
            return
        self.installed = hook.install(self.selector, self.instrumenter, self.warn)
        if self.race:
            runtime.install_api(self.engine)
            self._hooks()
            processes.install(_current)
        if self.collector is not None:
            self.collector.bind()
        self.active = True

    def shutdown(self):
        """What the interpreter does after __main__ ends: wait for threads, run atexit.

        Done here, before racewatch reports, so races in late threads and atexit handlers
        are seen; the interpreter's own later pass then finds nothing left to do.
        """
        from racewatch import runmain
        # the real _shutdown: what it raises is printed as the interpreter prints it, with no
        # frame of racewatch's patch in its traceback
        if runmain.shutdown_threads(interceptors.unpatched(threading, "_shutdown")):
            # python waits for threads once: after Ctrl-C cut the wait short it lets the
            # others be, and so must its own pass at finalization (3.15's _shutdown, called
            # again, joins the threads still running: the process would hang)
            patching.patch(threading, "_shutdown", lambda: None)
        if self.race and self.active:
            interceptors.threads_joined()
        run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
        if run_exitfuncs is not None:
            run_exitfuncs()

    def end(self, outcome):
        """After the program's main code (a runmain.Outcome): shutdown, the summary, and the
        exit status; a program ended by Ctrl-C dies of SIGINT, as under python."""
        try:
            self.shutdown()
        except KeyboardInterrupt:
            outcome.interrupted = True
        status = self.finish(outcome.status)
        if outcome.interrupted:
            from racewatch import runmain
            runmain.exit_by_sigint()
        return status

    def finish(self, status):
        """The summary of races found; returns the exit status the process should have.
        Only the first call reports: whoever ends the process first (the runner, a
        multiprocessing child's bootstrap, the pytest plugin) has the last word."""
        if self.finished:
            return status
        self.finished = True
        return self.reporter.finish(status) if self.race else status


def cover_mode(options):
    """The coverage mode in force, or None; `count` is refused under race detection, as
    `go test -race` refuses it: its plain increments would be data races themselves."""
    mode = options.cover
    if mode == "on":
        mode = "atomic" if options.race else "set"
    if mode == "count" and options.race:
        from racewatch.config import ConfigError
        raise ConfigError("cover mode must be 'atomic' or 'set', not 'count', when race "
                          "detection is on (or turn it off with race=0 / --no-race)")
    return mode or None


# Set by `racewatch run` for its child processes: the directories of the parent's own code, so
# that a spawned worker instruments the parent's script wherever the child starts.
ROOTS_VARIABLE = "RACEWATCH_ROOTS"


def default_roots(script=None):
    """The user's own code: the script's directory and the current project (and the parent's
    when `racewatch run` started this process's parent)."""
    roots = [project.project_root(os.getcwd())]
    if script is not None:
        roots.append(os.path.dirname(os.path.realpath(script)))
    roots += [r for r in os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if r]
    return roots


def _current():
    return current
