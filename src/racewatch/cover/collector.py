"""Line counts of this process: the bound `hit` probe, and the data files written at its end
(exit, os._exit, SIGTERM, after a fork only what the child ran) and, optionally, on a timer."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import atexit
import contextlib
import gc
import importlib
import os
import secrets
import signal
import socket
import sys
import time

from racewatch import runtime
from racewatch.cover import atomicwrite, countsfile, escapes
from racewatch.rewriter import sites
from racewatch.runtime import owned

# The collector of this process, if coverage is on (there is one at most).
current = None


def load_counters(name):
    """The counters module for the `runtime` option: C (falls back to Python) or Python."""
    if name == "c":
        try:
            return importlib.import_module("racewatch.cover._counters")
        except ImportError as exc:
            sys.stderr.write(f"racewatch: C coverage counters unavailable ({exc}); "
                             "using the pure-Python counters\n")
    return importlib.import_module("racewatch.cover.pycounters")


class Collector:
    def __init__(self, mode, implementation="c", flush_interval=0.0, start_dir=None):
        global current
        self.mode = mode
        self.counters = load_counters(implementation)
        self.native = not self.counters.__name__.endswith("pycounters")
        # Chained lines (rewriter/chains.py) need hit counts, and counters read together with
        # the frames on their way to a chained line: only the C counters read both in one go.
        self.chains = self.native and mode != "set"
        self.chained = {}  # chained line site -> (site counted before it, escape site or None)
        self.escapes = set()
        self.started = {}  # escape site -> frames inside its region at the fork (in a child)
        self.regions = escapes.new_cache()
        self.start_dir = start_dir or os.getcwd()
        self.flush_interval = flush_interval
        self.files = {}  # registered path -> [real path, sha256, [(site, line), ...]]
        self.lock = owned.rlock()  # one write at a time: exit, timer, SIGTERM
        self.settings = None  # the user's coverage configuration, read at the first flush
        self.written_final = False
        self.writing_final = False  # the final write is under way (SIGTERM's handler waits)
        self.timer_ident = None  # the periodic flush's thread, racewatch's own
        self.die_when_written = False  # a SIGTERM came while the final write was under way
        self.warned = set()
        self._new_process()
        for site_id in range(len(sites.SITES)):  # sites registered before coverage started
            site = sites.SITES[site_id]
            self._add_record(site.file, site_id, site.line, site.kind, site.name)
        sites.SITES.listeners.append(self._registered)
        self.counters.reserve(len(sites.SITES))
        current = self
        atexit.register(self.flush_final)
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        _patch_exit()
        _catch_sigterm(self)
        self._start_timer()

    def bind(self):
        """Make line probes count: code loaded from now on gets hit tokens, and tokens already
        loaded count again (after a stop)."""
        runtime.hit_token = self.token
        self.counters.enable(True)

    def unbind(self):
        """Line probes stop counting (racewatch stopped); code loaded later gets inert tokens."""
        runtime.hit_token = None
        self.counters.enable(False)

    def token(self, site):
        return self.counters.hit_token(site, self.mode)

    # -- sites -------------------------------------------------------------------------------

    def _registered(self, base, records):
        self.counters.reserve(base + len(records))
        path = sites.SITES[base].file if records else None
        for offset, (line, _function, kind, name) in enumerate(records):
            self._add_record(path, base + offset, line, kind, name)

    def _add_record(self, path, site, line, kind, name):
        if kind == "line_escape":
            self.escapes.add(site)
        elif kind == "line_chained":
            previous, escape = name  # relative to the site (ModuleSites.chain)
            self.chained[site] = (site + previous, None if escape is None else site + escape)
            self._add_site(path, site, line)
        elif kind == "line":
            self._add_site(path, site, line)

    def _add_site(self, path, site, line):
        entry = self.files.get(path)
        if entry is None:
            entry = self.files[path] = [os.path.realpath(path), countsfile.file_digest(path), []]
        entry[2].append((site, line))

    # -- data --------------------------------------------------------------------------------

    def snapshot(self):
        """{real path: {line: hits}} for every probed line, 0 included."""
        total = len(sites.SITES)
        if self.chained:
            raw, places = self.counters.snapshot(0, total)
        else:
            raw = self.counters.counts(0, total)
        values = memoryview(raw).cast("Q") if self.native else raw
        if self.chained:
            values = self._count_chained(list(values), places)
        out = {}
        for real, _digest, site_lines in list(self.files.values()):
            lines = out.setdefault(real, {})
            for site, line in site_lines:
                lines[line] = lines.get(line, 0) + values[site]
        return out

    def _count_chained(self, values, places):
        """Each chained line's runs: the runs of the line before it, less those that raised in
        between, or are still in between in a running frame, or (in a fork child) were in
        between at the fork, when this process's counts started."""
        unfinished = self._unfinished(places)
        for site in sorted(self.chained):  # a line's site comes after the one it counts from
            previous, escape = self.chained[site]
            runs = values[previous]
            if escape is not None:
                runs -= values[escape] + unfinished.get(escape, 0) - self.started.get(escape, 0)
            values[site] = max(runs, 0)
        return values

    def _unfinished(self, places):
        return escapes.unfinished(places, self.escapes.__contains__, self.regions)

    def flush_final(self):
        self.flush(final=True)

    def flush(self, final=False):
        """Write this process's counts file and coverage.py data file, each atomically."""
        with self.lock:
            if self.written_final:
                return
            self.writing_final = final
            try:
                with _collections_paused(final):
                    self._write(final)
            except Exception as exc:  # noqa: BLE001 - the program's exit must not fail here
                self._warn("write", f"cannot write coverage data: {type(exc).__name__}: {exc}")
            if final:
                self.written_final = True
        if final and self.die_when_written:
            _die_of_sigterm()

    def _write(self, final):
        snapshot = self.snapshot()
        digests = {real: digest for real, digest, _ in self.files.values()}
        settings = self._settings()
        directory = (os.path.dirname(settings.data_file) if settings is not None
                     else self.start_dir)
        counts = countsfile.Counts(self.mode, {p: (digests[p], lines)
                                               for p, lines in snapshot.items()})
        data = counts.to_json(pid=os.getpid(), host=socket.gethostname(), argv=sys.argv,
                              final=final)
        atomicwrite.write_bytes(os.path.join(directory, f"{countsfile.STEM}.{self.suffix}.json"),
                                data)
        if settings is not None and settings.branch:
            from racewatch.cover import covdata
            self._warn("branch", "warning: " + covdata.BRANCH_REFUSED)
        elif settings is not None:
            from racewatch.cover import covdata
            executed = {p: {line for line, hits in lines.items() if hits}
                        for p, lines in snapshot.items()}
            covdata.write(covdata.data_file_name(settings, self.suffix), executed, settings,
                          covdata.Selection(settings))

    def _settings(self):
        if self.settings is None:
            try:
                from racewatch.cover import covdata
                self.settings = covdata.Settings(self.start_dir)
            except Exception as exc:  # noqa: BLE001 - no coverage.py, or a config it rejects
                self._warn("config", f"no coverage.py data file ({type(exc).__name__}: {exc}); "
                           "the counts file is still written")
                return None
        return self.settings

    def _warn(self, key, message):
        if key not in self.warned:
            self.warned.add(key)
            sys.stderr.write(f"racewatch: {message}\n")

    # -- processes ---------------------------------------------------------------------------

    def _new_process(self):
        host = socket.gethostname().replace(".", "_") or "host"
        self.suffix = f"{host}.pid{os.getpid()}.X{secrets.token_hex(3)}x"
        self.generation = object()

    def _after_fork_in_child(self):
        """The child counts only what it runs: the parent writes what ran before the fork.
        A frame of the forking thread inside an escape region will reach the line after it in
        the child, which never counted the line before: those are counted as started."""
        self.counters.reset()
        self.started = self._unfinished(escapes.places_of(sys._getframe()))
        self.lock = owned.rlock()
        self.written_final = self.writing_final = False
        self._new_process()
        _catch_sigterm(self)  # the child's own timer, for its own main thread
        self._start_timer()

    def _start_timer(self):
        if self.flush_interval > 0:
            _thread.start_new_thread(self._flush_every, (self.generation,))

    def _flush_every(self, generation):
        """A kill -9 then loses at most one interval (racewatch's own thread: never traced)."""
        self.timer_ident = _thread.get_ident()
        while True:
            time.sleep(self.flush_interval)
            if generation is not self.generation or self.written_final:
                return
            self.flush(final=False)


@contextlib.contextmanager
def _collections_paused(final):
    """No garbage collection during the final write: importing coverage.py there (some 160
    modules with what they use) sets off collections that each walk the whole heap of the
    program, which is about to end. What they would have freed is collected once collections
    are back on."""
    paused = final and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _patch_exit():
    """os._exit skips atexit (multiprocessing's fork and forkserver children leave through it):
    write first."""
    real = os._exit
    if getattr(real, "_racewatch", False):
        return

    def _exit(status):
        if current is not None:
            current.flush_final()
        real(status)

    _exit._racewatch = True
    _exit.__doc__ = real.__doc__
    os._exit = _exit


def _catch_sigterm(collector):
    """Under SIGTERM's default action (death), write first, then die of it as before.

    The signal is caught in C (by the C counters' module, built with the C runtime, whichever
    counters count), which has a helper signal's Python handler run in the main thread: the
    program's code stops there, its other threads at their next line, and the files are
    written from counts that include everything it did. Without the C module, a Python handler
    of SIGTERM does it, when the main thread next executes bytecode (never if the signal lands
    just before it blocks in a C call: the process then hangs until killed). Either way only
    the main thread may install handlers."""
    signals = _signal_module()
    catch = getattr(signals, "catch_sigterm", None)
    helper = _helper_signal()
    try:
        if catch is not None and helper is not None:
            if signal.getsignal(helper) in (signal.SIG_DFL, _on_sigterm):
                signal.signal(helper, _on_sigterm)
                if not catch(helper):
                    signal.signal(helper, signal.SIG_DFL)  # SIGTERM is the program's
        elif signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        pass  # not the main thread


def _helper_signal():
    """A real-time signal programs leave alone (glibc's own are below SIGRTMIN), or None."""
    top = getattr(signal, "SIGRTMAX", None)
    return None if top is None else top - 2


def _on_sigterm(signum, frame):
    signals = _signal_module()
    handled = getattr(signals, "sigterm_handled", None)
    if handled is not None:
        handled()
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    collector = current
    if collector is None or collector.written_final:
        _die_of_sigterm()
    if collector.writing_final:
        # The final write (an atexit function) is under way in this very thread: let it
        # finish, then die; raising here would break the write the signal interrupted.
        collector.die_when_written = True
        return
    freeze = getattr(signals, "freeze_other_threads", None)
    if freeze is not None:
        freeze([collector.timer_ident] if collector.timer_ident is not None else [])
    with _half_imports_set_aside():
        collector.flush_final()
    _die_of_sigterm()


@contextlib.contextmanager
def _half_imports_set_aside():
    """The signal may land while the program imports a module (a pool worker terminated as it
    starts): what the write imports (coverage.py and its own imports) must not get that module
    half-initialized, so it is out of sys.modules meanwhile (the write imports it whole) and
    put back after; the process dies next."""
    half = {}
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        spec = namespace.get("__spec__") if type(namespace) is dict else None
        if getattr(spec, "_initializing", False) is True:
            half[name] = module
    # A half-imported package's submodules go too, though whole: imported again, the package
    # would find them in sys.modules and never bind them as its attributes (a worker stopped
    # in multiprocessing/__init__.py: "module 'multiprocessing' has no attribute 'process'").
    packages = tuple(name + "." for name in half)
    for name, module in list(sys.modules.items()) if packages else ():
        if name.startswith(packages):
            half[name] = module
    for name in half:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.update(half)


def _signal_module():
    """The C module that catches SIGTERM (the C counters' own), or None where it is not built."""
    try:
        return importlib.import_module("racewatch.cover._counters")
    except ImportError:
        return None


def _die_of_sigterm():
    """Die of SIGTERM, as the default action would have."""
    die = getattr(_signal_module(), "die_of_sigterm", None)
    if die is not None:
        die()
    else:
        os.kill(os.getpid(), signal.SIGTERM)
