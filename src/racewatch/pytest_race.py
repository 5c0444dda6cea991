"""pytest --race: a race found while a test runs fails that test, as under `go test -race`.

Races are attributed to the phase (setup, call, teardown) during which the runtime reported
them; races between tests, during collection or at the end fail the session. A test marked
`@pytest.mark.racy` is expected to race: it fails if no race is seen in its setup or call.
Under pytest-xdist every worker has its own session and sends its findings to the controller.
"""

import contextlib
import os

import pytest

from racewatch import config as options_table
from racewatch import plugin
from racewatch.runtime import owned as own_locks
from racewatch.runtime.inversion import HEADER as INVERSION_HEADER

FAILED = "race detected during execution of test"
FAILED_INVERSION = "lock-order inversion (potential deadlock) detected during execution of test"
OUTSIDE = "race detected outside of test execution"
EXPECTED = "expected a data race (marked racy), none was detected"
_PHASE_RACES = pytest.StashKey()  # item -> [text] of races in its setup and call


def start(config):
    """Start (or join) racewatch's session for this pytest process and register the plugin."""
    from racewatch import session as sessions
    flags = _flags(config)
    running = sessions.current
    if running is not None and running.active:  # -X race / PYTHONRACE started it
        if flags:
            raise pytest.UsageError("racewatch: already started by -X race / PYTHONRACE; "
                                    f"set {', '.join(sorted(flags))} there, not as pytest options")
        session, owned = running, False
    else:
        try:
            resolved = options_table.resolve(str(config.rootpath), flags)
            roots = [str(config.rootpath), *sessions.default_roots()]
            session, owned = sessions.Session(resolved, roots), True
        except options_table.ConfigError as exc:
            raise pytest.UsageError(f"racewatch: {exc}") from None
    from racewatch.rewriter import interop
    from racewatch.runtime import stacks
    stacks.BOUNDARIES.update(interop.pytest_stack_boundaries())
    if session.race:  # with race=0 racewatch only measures coverage: nothing to attribute
        config.pluginmanager.register(RacePlugin(config, session, owned), "racewatch-race")


def _flags(config):
    values = {}
    for option in options_table.OPTIONS:
        text = getattr(config.known_args_namespace, _dest(option), None)
        if text is None:
            continue
        try:
            values[option.name] = options_table.parse_value(
                option.name, text, f"pytest option {plugin.option_flag(option)}")
        except options_table.ConfigError as exc:
            raise pytest.UsageError(f"racewatch: {exc}") from None
    return values


def _dest(option):
    return "race_" + option.name


class RacePlugin:
    """Attributes each race report to the test phase that was running when it was found."""

    def __init__(self, config, session, owned):
        self.config = config
        self.session = session
        self.owned = owned
        self.reporter = session.reporter
        # Reports reach the terminal through test reports; files still get every report.
        self.reporter.echo = session.options.log_path not in ("stderr", "stdout")
        self.reporter.listeners.append(self._on_race)
        self._lock = own_locks.lock()
        self._texts = {}     # racing pair -> (its report, the test running when it was found)
        self._counts = {}    # racing pair -> times raced, at the last phase boundary
        self._running = None  # nodeid of the test running now
        self._inversions = []  # texts of lock-order inversions found since the last _take
        self.outside = []    # report texts of races outside any test
        self.failed = []     # nodeids of tests failed by races
        self.workers = []    # what xdist workers sent back (on the controller)

    def _on_race(self, record, text):
        with self._lock:
            if record.type == "race":
                self._texts.setdefault(record.pair, (text, self._running))
            else:  # a lock-order inversion: reported once, when its cycle closes
                self._inversions.append(text)
        if self.session.options.halt_on_error:
            self._halt(text)

    def _halt(self, text):
        capture = self.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            os.write(2, (text + self.reporter.summary()).encode(errors="replace"))
        os._exit(self.session.options.exitcode)

    def _take(self):
        """Report texts of the racing pairs that raced again since the last call. A pair is
        reported once per process, so a pair that raced in an earlier test and races again
        is found through the runtime's counts, and shown with its first report."""
        now = self.reporter.pairs()
        with self._lock:
            grown = [pair for pair, n in sorted(now.items()) if n > self._counts.get(pair, 0)]
            self._counts = now
            texts = []
            for pair in grown:
                text, first = self._texts.get(pair, (None, None))
                if text is None:
                    a, b = self._pairs_text([(pair, 0)])[0][:2]
                    text = f"(a race between {a} and {b}, reported earlier)\n"
                elif first is not None and first != self._running:
                    text = f"(the same race as first reported during {first})\n{text}"
                texts.append(text)
            texts += self._inversions
            self._inversions = []
        return texts

    # -- attribution ---------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid, location):
        self.outside += self._take()  # found since the previous test ended
        self._running = nodeid

    def pytest_runtest_logfinish(self, nodeid, location):
        self._running = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        found = self._take()
        seen = item.stash.setdefault(_PHASE_RACES, [])
        if call.when != "teardown":
            seen += found
        if item.get_closest_marker("racy") is not None:
            self._expected(report, call.when, found, seen)
        elif found:
            self._fail(item, report, found)

    def _expected(self, report, when, found, seen):
        if found:
            report.sections.append((f"racewatch: expected race ({when})", "".join(found)))
        if when == "call" and not seen and report.passed:
            report.outcome = "failed"
            report.longrepr = EXPECTED

    def _fail(self, item, report, found):
        text = "".join(found)
        inversions_only = all(INVERSION_HEADER in t for t in found)
        title = FAILED_INVERSION if inversions_only else FAILED
        if report.passed or report.skipped and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"{title}\n\n{text}"
        else:  # failed (or xfailed) on its own: keep its own failure, add the races
            report.sections.append((f"racewatch: {title} ({report.when})", text))
        if item.nodeid not in self.failed:
            self.failed.append(item.nodeid)

    # -- the end -------------------------------------------------------------------------------

    def pytest_report_header(self, config):
        engine = self.session.engine.__name__.rpartition(".")[2]
        return f"racewatch: race detection on ({'C' if engine == '_fast' else 'pure-Python'} runtime)"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.outside += self._take()
        if self._everyone("outside") and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports for everyone
            workeroutput["racewatch"] = {"outside": self.outside, "failed": self.failed,
                                         "pairs": self._pairs(),
                                         "inversions": len(self.reporter.inversions),
                                         "suppressed": dict(self.reporter.suppressions.fired)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        found = getattr(node, "workeroutput", {}).get("racewatch")
        if found:
            self.workers.append(found)

    def _everyone(self, key):
        """This process's findings under `key` and every xdist worker's."""
        mine = {"outside": self.outside, "failed": self.failed}[key]
        return mine + [x for worker in self.workers for x in worker.get(key, [])]

    def _pairs(self):
        return self._pairs_text(sorted(self.reporter.pairs().items()))

    def _pairs_text(self, pairs):
        from racewatch.runtime import report
        strip = self.session.options.strip_path_prefix
        return [[report.site_label(a, strip), report.site_label(b, strip), n]
                for (a, b), n in pairs]

    def pytest_terminal_summary(self, terminalreporter):
        if getattr(self.config, "workerinput", None) is not None:
            return
        pairs = {}
        for process in [self._pairs()] + [w.get("pairs", []) for w in self.workers]:
            seen = {}
            for a, b, n in process:  # one pair may race in several workers: same sites, same key
                nth = seen[a, b] = seen.get((a, b), -1) + 1  # (a read and a write on one line)
                pairs[a, b, nth] = pairs.get((a, b, nth), 0) + n
        outside = self._everyone("outside")
        inversions = len(self.reporter.inversions) + sum(w.get("inversions", 0)
                                                         for w in self.workers)
        used = self._suppressions_used()
        if not pairs and not outside and not inversions and not used:
            return
        write = terminalreporter.write_line
        terminalreporter.section("racewatch")
        if used:
            write(used.rstrip("\n"))
        if not pairs and not outside and not inversions:
            return
        for text in outside:
            write(f"{OUTSIDE}\n{text}")
        write(f"racewatch: found {len(pairs)} data race(s)")
        for (a, b, _), n in sorted(pairs.items()):
            write(f"  {a} vs {b} ({n} time{'s' if n != 1 else ''})")
        if inversions:
            write(f"racewatch: found {inversions} lock-order inversion(s) (potential deadlock)")
        failed = self._everyone("failed")
        if failed:
            write(f"racewatch: {len(failed)} test(s) failed by races")

    def _suppressions_used(self):
        """With `print_suppressions`: the rules that fired here and in every xdist worker."""
        if not self.session.options.print_suppressions:
            return ""
        from racewatch.runtime import suppress
        fired = dict(self.reporter.suppressions.fired)
        for worker in self.workers:
            for rule, count in worker.get("suppressed", {}).items():
                fired[rule] = fired.get(rule, 0) + count
        return suppress.used_text(fired) or "racewatch: no suppressions used\n"

    def pytest_unconfigure(self, config):
        # A log file gets its summary too; a JSON stream always ends with one.
        if self.reporter.echo and (self.reporter.pairs() or self.reporter.inversions or
                                   self.reporter.json):
            self.reporter.sink.write(self.reporter.summary())
        self.session.finished = True  # that was the summary; the exit status is pytest's
        if self.owned:
            self.session.stop()
