"""pytest --race: a race found while a test runs fails that test, as under `go test -race`.

Races are attributed to the phase (setup, call, teardown) during which the runtime reported
them; races between tests, during collection or at the end fail the session. A test marked
`@pytest.mark.racy` is expected to race: it fails if no race is seen in its setup or call.
Under pytest-xdist every worker has its own session and sends its findings to the controller.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import contextlib
import os

import pytest

from racewatch import config as options_table
from racewatch import descendants
from racewatch.runtime import owned as own_locks
from racewatch.runtime.inversion import HEADER as INVERSION_HEADER

FAILED = "race detected during execution of test"
FAILED_INVERSION = "lock-order inversion (potential deadlock) detected during execution of test"
OUTSIDE = "race detected outside of test execution"
EXPECTED = "expected a data race (marked racy), none was detected"
_PHASE_RACES = pytest.StashKey()  # item -> [text] of races in its setup and call


def _again(first, text):
    return f"(the same race as first reported during {first or 'no test'})\n{text}"


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
            # pytest captures stderr while this runs: warnings go to the terminal summary
            session, owned = sessions.Session(resolved, roots, warnings=[]), True
            if "PYTEST_XDIST_WORKER" in os.environ:  # (config.workerinput is not set yet)
                session.reporter.tree = session.tree = None  # xdist tells the controller
            else:
                session.lead()
        except options_table.ConfigError as exc:
            raise pytest.UsageError(f"racewatch: {exc}") from None
    from racewatch.rewriter import interop
    from racewatch.runtime import interceptors, stacks
    stacks.BOUNDARIES.update(interop.pytest_stack_boundaries())
    interceptors.on_import("unittest.case", lambda module: stacks.BOUNDARIES.update(
        interop.unittest_stack_boundaries()))
    if session.race:  # with race=0 racewatch only measures coverage: nothing to attribute
        config.pluginmanager.register(RacePlugin(config, session, owned), "racewatch-race")
    if session.collector is not None and config.known_args_namespace.race_cover_report != "none":
        config.pluginmanager.register(CoverTable(config, session), "racewatch-cover")
    if session.warnings is not None:
        config.pluginmanager.register(Warnings(config, session.warnings), "racewatch-warnings")


class CoverTable:
    """`--race-cover`: a table of line coverage at the end of the run (pytest-cov's `term` and
    `term-missing` reports), summed over xdist workers, which send their counts back."""

    def __init__(self, config, session):
        self.config = config
        self.collector = session.collector
        self.show_missing = config.known_args_namespace.race_cover_report == "term-missing"
        self.workers = []  # {real path: {line: hits}} of each xdist worker

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            output["racewatch_cover"] = {path: {str(line): hits for line, hits in lines.items()}
                                         for path, lines in self.collector.snapshot().items()}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        found = getattr(node, "workeroutput", {}).get("racewatch_cover")
        if found:
            self.workers.append({path: {int(line): hits for line, hits in lines.items()}
                                 for path, lines in found.items()})

    def pytest_terminal_summary(self, terminalreporter):
        if getattr(self.config, "workerinput", None) is not None:
            return
        from racewatch.cover import countsfile, textreport
        total = countsfile.Counts(self.collector.mode)
        wanted = _coverage_selection(self.collector.start_dir)
        for snapshot in [self.collector.snapshot(), *self.workers]:
            total.add(countsfile.Counts(self.collector.mode, {
                path: ("0" * 64, lines) for path, lines in snapshot.items() if wanted(path)}))
        terminalreporter.section("racewatch coverage")
        terminalreporter.write(textreport.file_table(total, self.show_missing))


def _coverage_selection(start_dir):
    """The files coverage.py's configuration (source, include, omit) selects."""
    try:
        from racewatch.cover import covdata
        return covdata.Selection(covdata.Settings(start_dir)).wants
    except Exception:  # noqa: BLE001 - no coverage.py, or a config it rejects: every file
        return lambda path: True


class Warnings:
    """racewatch's warnings (modules it could not instrument), once each, in the terminal
    summary; xdist workers send theirs to the controller. A worker's start repeats the
    controller's, which only the controller tells."""

    def __init__(self, config, warnings):
        self.config = config
        self.warnings = warnings
        self.worker = "PYTEST_XDIST_WORKER" in os.environ
        self.at_start = len(warnings)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            output["racewatch_warnings"] = self.warnings[self.at_start:]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        self.warnings += getattr(node, "workeroutput", {}).get("racewatch_warnings", [])

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        if self.worker or not self.warnings:
            return
        terminalreporter.section("racewatch warnings", yellow=True)
        for text in dict.fromkeys(self.warnings):
            terminalreporter.write_line(f"racewatch: warning: {text}", yellow=True)


def _flags(config):
    values = {}
    for option in options_table.OPTIONS:
        text = getattr(config.known_args_namespace, _dest(option), None)
        if text is None:
            continue
        try:
            values[option.name] = options_table.parse_value(
                option.name, text, f"pytest option {options_table.pytest_flag(option)}")
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
        self._fresh = []     # (text, racing pair or None) of reports since the last _take
        self._findings = {}  # finding (see _finding) -> the test it was first reported in
        self._failed_pairs = {}  # finding -> the test it failed (here: every process's)
        self.outside = []    # report texts of races outside any test
        self.failed = []     # nodeids of tests failed by races (every process's, where seen)
        self.workers = []    # what xdist workers sent back (on the controller)
        self.descendants = []  # what processes started under this run found (descendants.py)

    def _on_race(self, record, text):
        with self._lock:
            if record.type == "race":
                self._texts.setdefault(record.pair, (text, self._running))
                self._fresh.append((text, record.pair))
            else:  # a lock-order inversion: reported once, when decided (lockorder.py)
                self._fresh.append((text, None))
        if self.session.options.halt_on_error:
            self._halt(text)

    def _halt(self, text):
        capture = self.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            os.write(2, (text + self.reporter.summary()).encode(errors="replace"))
        os._exit(self.session.options.exitcode)

    def _finding(self, pair):
        """The finding a racing pair belongs to, the same in every xdist worker: its two
        `file:line` sites (the read/write and write/write pairs of one `x += 1` are one)."""
        a, _, b, _, _ = self._site_pair(pair, 0)
        return (a, b) if a <= b else (b, a)

    def _site_pair(self, pair, count):
        from racewatch.runtime import report
        return report.site_pair(*pair, count, self.session.options.strip_path_prefix)

    def _take(self):
        """(fresh, recurring) since the last call: fresh are the reports found meanwhile, as
        (text, racing pair or None for an inversion); recurring the texts of pairs first
        reported earlier that raced again (a pair is reported once per process, as under
        `go test -race`: they count in the summary and fail no other test). A pair first
        reported now whose finding (its two lines) was reported earlier recurs too."""
        now = self.reporter.pairs()
        with self._lock:
            fresh, recurring, reported = [], [], set()
            for text, pair in self._fresh:
                reported.add(pair)
                finding = self._finding(pair) if pair is not None else None
                first = self._findings.setdefault(finding, self._running) if finding \
                    else self._running
                if first == self._running:
                    fresh.append((text, pair))
                else:
                    recurring.append(_again(first, text))
            self._fresh = []
            for pair, n in sorted(now.items()):
                if n <= self._counts.get(pair, 0) or pair in reported:
                    continue
                text, first = self._texts.get(pair, (None, None))
                if text is not None:
                    recurring.append(_again(first, text))
            self._counts = now
        return fresh, recurring

    # -- attribution ---------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid, location):
        fresh, _ = self._take()  # found since the previous test ended
        self.outside += [text for text, _ in fresh]
        self._running = nodeid

    def pytest_runtest_logfinish(self, nodeid, location):
        self._running = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        self.reporter.decide()  # lock-order cycles closed in this phase
        fresh, recurring = self._take()
        found = [text for text, _ in fresh]
        seen = item.stash.setdefault(_PHASE_RACES, [])
        if call.when != "teardown":
            seen += found + recurring  # a racy test expects a race, first reported or not
        if item.get_closest_marker("racy") is not None:
            self._expected(report, call.when, found + recurring, seen)
        elif found:
            self._fail(report, found, [self._finding(pair) for _, pair in fresh if pair])
        elif recurring:
            report.sections.append((f"racewatch: races reported in an earlier test "
                                    f"({call.when})", "".join(recurring)))

    def _expected(self, report, when, found, seen):
        if found:
            report.sections.append((f"racewatch: expected race ({when})", "".join(found)))
        if when == "call" and not seen and report.passed:
            report.outcome = "failed"
            report.longrepr = EXPECTED

    def _fail(self, report, found, pairs):
        text = "".join(found)
        inversions_only = all(INVERSION_HEADER in t for t in found)
        title = FAILED_INVERSION if inversions_only else FAILED
        if report.passed or report.skipped and not hasattr(report, "wasxfail"):
            # failed by races alone: what it was goes along (through xdist too)
            report.racewatch_was = [report.outcome, report.longrepr]
            report.outcome = "failed"
            report.longrepr = f"{title}\n\n{text}"
        else:  # failed (or xfailed) on its own: keep its own failure, add the races
            report.sections.append((f"racewatch: {title} ({report.when})", text))
        # the pairs go along to the xdist controller, which fails only the first test of each
        report.racewatch_pairs = [list(labels) for labels in pairs]
        report.racewatch_inversion = len(pairs) < len(found)

    @pytest.hookimpl(hookwrapper=True)  # before pytest's session counts the failure
    def pytest_runtest_logreport(self, report):
        """Where every process's reports meet (xdist's controller, or pytest itself): a pair
        fails only the first test whose report brings it; a later test failed only by pairs
        that failed an earlier one passes (two workers can each report a pair first)."""
        pairs = getattr(report, "racewatch_pairs", None)
        if pairs is not None and getattr(self.config, "workerinput", None) is None:
            self._first_failures(report, pairs)
        yield

    def _first_failures(self, report, pairs):
        new = [tuple(p) for p in pairs if tuple(p) not in self._failed_pairs]
        was = getattr(report, "racewatch_was", None)
        if not new and not report.racewatch_inversion and was is not None:
            firsts = sorted({self._failed_pairs[tuple(p)] for p in pairs})
            report.sections.append((f"racewatch: races reported in an earlier test "
                                    f"({report.when})",
                                    f"(the same race(s) as first reported during "
                                    f"{', '.join(firsts)})\n{report.longrepr}"))
            report.outcome, report.longrepr = was[0], was[1]
            return
        for labels in new:
            self._failed_pairs[labels] = report.nodeid
        if report.nodeid not in self.failed:
            self.failed.append(report.nodeid)

    # -- the end -------------------------------------------------------------------------------

    def pytest_report_header(self, config):
        engine = self.session.engine.__name__.rpartition(".")[2]
        return f"racewatch: race detection on ({'C' if engine == '_fast' else 'pure-Python'} runtime)"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.reporter.decide()
        fresh, _ = self._take()
        self.outside += [text for text, _ in fresh]
        if self._everyone("outside") and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        tree = self.session.tree
        if tree is not None and tree.top:
            self.descendants = tree.collect()
            if self.descendants and session.exitstatus == 0:
                session.exitstatus = self.session.options.exitcode
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports for everyone
            workeroutput["racewatch"] = {"outside": self.outside,
                                         "pairs": self._pairs(),
                                         "inversions": len(self.reporter.inversions),
                                         "suppressed": dict(self.reporter.suppressions.fired),
                                         "known": self._known()}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        found = getattr(node, "workeroutput", {}).get("racewatch")
        if found:
            self.workers.append(found)

    def _everyone(self, key):
        """This process's findings under `key` and every xdist worker's."""
        return getattr(self, key) + [x for worker in self.workers for x in worker.get(key, [])]

    def _pairs(self):
        """[site, access, site, access, times raced] of each racing pair of this process."""
        return [list(self._site_pair(pair, n)) for pair, n in sorted(self.reporter.pairs().items())]

    def pytest_terminal_summary(self, terminalreporter):
        if getattr(self.config, "workerinput", None) is not None:
            return
        from racewatch.reports import text as render
        counts = {}
        for process in [self._pairs()] + [w.get("pairs", []) for w in self.workers]:
            for *sites, n in process:  # one pair may race in several workers: counts add up
                counts[tuple(sites)] = counts.get(tuple(sites), 0) + n
        pairs = render.group_pairs([(*sites, n) for sites, n in counts.items()])
        outside = self._everyone("outside")
        inversions = len(self.reporter.inversions) + sum(w.get("inversions", 0)
                                                         for w in self.workers)
        used = self._suppressions_used()
        known = self._known() + sum(w.get("known", 0) for w in self.workers)
        if known:
            used += (f"racewatch: {known} known finding(s) not reported (baseline "
                     f"{self.session.options.baseline})\n")
        others = descendants.summary_lines(self.descendants)
        if not pairs and not outside and not inversions and not used and not others:
            return
        write = terminalreporter.write_line
        terminalreporter.section("racewatch")
        if used:
            write(used.rstrip("\n"))
        if others:
            write(others.rstrip("\n"))
        if not pairs and not outside and not inversions:
            return
        for text in outside:
            write(f"{OUTSIDE}\n{text}")
        write(f"racewatch: found {len(pairs)} data race(s)")
        for a, b, n in pairs:
            write(f"  {a} vs {b} ({n} time{'s' if n != 1 else ''})")
        if inversions:
            write(f"racewatch: found {inversions} lock-order inversion(s) (potential deadlock)")
        failed = self.failed  # seen here for every process (pytest_runtest_logreport)
        if failed:
            write(f"racewatch: {len(failed)} test(s) failed by races")

    def _known(self):
        """How many findings of this process the baseline matched."""
        return self.reporter.baseline.matched if self.reporter.baseline is not None else 0

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
