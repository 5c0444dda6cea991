"""Line counts of this process: the bound `hit` probe, and the data files written at its end
(exit, os._exit, SIGTERM, after a fork only what the child ran) and, optionally, on a timer."""

import _thread
import atexit
import builtins
import importlib
import os
import secrets
import signal
import socket
import sys
import time

from racewatch import runtime
from racewatch.cover import atomicwrite, countsfile
from racewatch.rewriter import sites

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
        self.hit = getattr(self.counters, f"hit_{mode}")
        self.native = not self.counters.__name__.endswith("pycounters")
        self.start_dir = start_dir or os.getcwd()
        self.flush_interval = flush_interval
        self.files = {}  # registered path -> [real path, sha256, [(site, line), ...]]
        self.lock = _thread.RLock()  # a SIGTERM handler may flush inside a flush
        self.settings = None  # the user's coverage configuration, read at the first flush
        self.written_final = False
        self.writer = None  # the thread writing the files now
        self.sigterm_pending = False  # SIGTERM came while this thread was writing
        self.warned = set()
        self._new_process()
        for site_id in range(len(sites.SITES)):  # sites registered before coverage started
            site = sites.SITES[site_id]
            if site.kind == "line":
                self._add_site(site.file, site_id, site.line)
        sites.SITES.listeners.append(self._registered)
        self.counters.reserve(len(sites.SITES))
        current = self
        atexit.register(self.flush_final)
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        _patch_exit()
        _catch_sigterm()
        self._start_timer()

    def bind(self):
        """Make line probes count (again, after the race runtime bound its own names)."""
        setattr(builtins, runtime.api_name("hit"), self.hit)

    # -- sites -------------------------------------------------------------------------------

    def _registered(self, base, records):
        self.counters.reserve(base + len(records))
        path = sites.SITES[base].file if records else None
        for offset, (line, _function, kind, _name) in enumerate(records):
            if kind == "line":
                self._add_site(path, base + offset, line)

    def _add_site(self, path, site, line):
        entry = self.files.get(path)
        if entry is None:
            entry = self.files[path] = [os.path.realpath(path), countsfile.file_digest(path), []]
        entry[2].append((site, line))

    # -- data --------------------------------------------------------------------------------

    def snapshot(self):
        """{real path: {line: hits}} for every probed line, 0 included."""
        total = len(sites.SITES)
        raw = self.counters.counts(0, total)
        values = memoryview(raw).cast("Q") if self.native else raw
        out = {}
        for real, _digest, site_lines in list(self.files.values()):
            lines = out.setdefault(real, {})
            for site, line in site_lines:
                lines[line] = lines.get(line, 0) + values[site]
        return out

    def flush_final(self):
        self.flush(final=True)

    def flush(self, final=False):
        """Write this process's counts file and coverage.py data file, each atomically."""
        with self.lock:
            if self.written_final:
                return
            self.writer = _thread.get_ident()
            try:
                self._write(final)
            except Exception as exc:  # noqa: BLE001 - the program's exit must not fail here
                self._warn("write", f"cannot write coverage data: {type(exc).__name__}: {exc}")
            finally:
                self.writer = None
            if final:
                self.written_final = True
        if self.sigterm_pending:
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
        if settings is not None:
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
        """The child counts only what it runs: the parent writes what ran before the fork."""
        self.counters.reset()
        self.lock = _thread.RLock()
        self.written_final = False
        self._new_process()
        self._start_timer()

    def _start_timer(self):
        if self.flush_interval > 0:
            _thread.start_new_thread(self._flush_every, (self.generation,))

    def _flush_every(self, generation):
        """A kill -9 then loses at most one interval (racewatch's own thread: never traced)."""
        while True:
            time.sleep(self.flush_interval)
            if generation is not self.generation or self.written_final:
                return
            self.flush(final=False)


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


def _catch_sigterm():
    """Under SIGTERM's default action (death), write first, then die of it as before."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:
            pass  # not the main thread: only it may set handlers


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the write short
    if current is not None:
        if current.writer == _thread.get_ident():
            current.sigterm_pending = True  # inside a write (say os._exit's): finish it first
            return
        if _importing():
            # Interrupted in the middle of an import: importing coverage.py in this thread now
            # could meet that module half done; another thread just waits for it.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _thread.start_new_thread(_flush_and_die, ())
            return
        current.flush_final()
    _die_of_sigterm()


def _flush_and_die():
    current.flush_final()
    os.kill(os.getpid(), signal.SIGTERM)


def _importing():
    """Whether some module is half imported: importing coverage.py now could meet it."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for module in list(sys.modules.values()))


def _die_of_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
