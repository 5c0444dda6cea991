"""pytest --race on a temporary project (pytester, in subprocesses): a race fails the test that
ran it, the clean test passes, pytest's assertion messages survive, under xdist and
pytest-run-parallel too."""

import os

import pytest

from tests.helpers import RUNTIME

pytest_plugins = ["pytester"]

FAILED = "race detected during execution of test"

COUNTER = """
import threading


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n += 1


def hammer(counter, threads=2):
    workers = [threading.Thread(target=counter.bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
"""

TESTS = """
import threading

from counter import Counter, hammer


def test_racy():
    hammer(Counter())


def test_clean():
    counter, lock = Counter(), threading.Lock()

    def bump():
        with lock:
            counter.n += 1

    workers = [threading.Thread(target=bump) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.n == 2
"""


@pytest.fixture
def project(pytester, monkeypatch):
    """A project with a package under test and one racy and one clean test, in a clean
    environment (nothing of the outer run's PYTHON*, RACEWATCH_* or xdist variables)."""
    for name in list(os.environ):
        if name.startswith(("PYTHON", "RACEWATCH_", "COVERAGE_", "PYTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pytester.makefile(".toml", pyproject="[project]\nname = 'demo'\n")
    pytester.makepyfile(counter=COUNTER, test_counter=TESTS)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def race(pytester, *args):
    return run(pytester, "--race", f"--race-runtime={RUNTIME}", *args)


def verdicts(result):
    """{test name: passed?} from the `-rA` short summary (PASSED / FAILED / ERROR, and
    pytest-run-parallel's PARALLEL PASSED / PARALLEL FAILED)."""
    found = {}
    for line in result.outlines:
        words = line.split()
        ids = [w for w in words if "::" in w]
        if not ids or not words[0] in ("PASSED", "FAILED", "ERROR", "PARALLEL"):
            continue
        passed = words[1] == "PASSED" if words[0] == "PARALLEL" else words[0] == "PASSED"
        found[ids[0].split("::")[-1]] = passed
    return found


def section(result, title):
    """The text of an output section (`FAILURES`, `ERRORS`), up to the short summary."""
    text = result.stdout.str()
    start = text.index(f"= {title} =")
    return text[start:text.index("short test summary", start)]


def test_race_fails_exactly_the_racy_test(project):
    result = race(project, "-rA")
    result.assert_outcomes(failed=1, passed=1)
    assert verdicts(result) == {"test_racy": False, "test_clean": True}
    assert result.ret == 1
    failures = section(result, "FAILURES")
    assert "test_racy" in failures and "test_clean" not in failures
    assert FAILED in failures
    assert "WARNING: DATA RACE" in failures and "Counter.bump()" in failures
    assert "test_racy()" in failures            # the stack ends at the test function...
    assert "pytest_pyfunc_call" not in failures  # ... not in pytest's machinery
    result.stdout.fnmatch_lines(["*= racewatch =*", "racewatch: found * data race(s)",
                                 "racewatch: 1 test(s) failed by races"])


def test_without_race_both_pass(project):
    run(project).assert_outcomes(passed=2)


def test_ini_option_turns_it_on(project):
    project.makeini(f"[pytest]\nrace = true\n")
    result = run(project, f"--race-runtime={RUNTIME}")
    result.assert_outcomes(failed=1, passed=1)


def test_plugin_is_import_light_when_off(project):
    project.makeconftest("""
import sys

def pytest_sessionfinish(session):
    loaded = sorted(m for m in sys.modules if m.startswith("racewatch"))
    print("LOADED", loaded)
""")
    result = run(project, "-s")
    result.assert_outcomes(passed=2)
    line = next(line for line in result.outlines if "LOADED" in line)
    loaded = line.partition("LOADED ")[2]
    assert loaded == ("['racewatch', 'racewatch.annotations', 'racewatch.config', "
                      "'racewatch.control', 'racewatch.errors', 'racewatch.plugin', "
                      "'racewatch.pristine']")


def test_assertion_rewriting_survives_in_instrumented_test_modules(project):
    project.makepyfile(test_asserts="""
import sys

from racewatch.rewriter.instrument import is_instrumented


def test_module_is_instrumented():
    assert is_instrumented(sys._getframe().f_code)


def test_detailed_message():
    left = [1, 2, 3]
    assert left == [1, 2, 4]
""")
    result = race(project, "test_asserts.py")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["E       assert [1, 2, 3] == [1, 2, 4]",
                                 "E         At index 2 diff: 3 != 4"])


def test_instrumented_test_modules_see_the_builtins_they_replace(project):
    # racewatch's own code keeps a copy of the builtins (racewatch/pristine.py); a test module
    # it executes must still get the real ones, or its own replacements would not reach it
    project.makepyfile(test_builtins="""
import builtins


def test_replaced_len_is_seen():
    original = builtins.len
    builtins.len = lambda obj: 42
    try:
        assert len([]) == 42
    finally:
        builtins.len = original
""")
    race(project, "test_builtins.py").assert_outcomes(passed=1)


def test_a_race_in_the_test_module_itself(project):
    project.makepyfile(test_module_race="""
import threading

shared = {"hits": 0}


def test_global_dict():
    def hit():
        shared["hits"] += 1
    workers = [threading.Thread(target=hit) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
""")
    result = race(project, "test_module_race.py")
    result.assert_outcomes(failed=1)
    assert "key 'hits' of dict object" in result.stdout.str()


TWICE = """
from counter import Counter, hammer


def test_first():
    hammer(Counter())


def test_second():
    hammer(Counter())


def test_third():
    hammer(Counter())
"""


def test_the_same_race_again_fails_only_the_first_test(project):
    project.makepyfile(test_twice=TWICE)
    result = race(project, "test_twice.py", "-rA", "-p", "no:randomly")
    assert verdicts(result) == {"test_first": False, "test_second": True, "test_third": True}
    text = result.stdout.str()
    assert section(result, "FAILURES").count(FAILED) == 1
    # later occurrences are counted in the summary, and shown beside the tests that met them
    result.stdout.fnmatch_lines(["*counter.py:9 vs *counter.py:9 (read, write) (3 times)",
                                 "racewatch: 1 test(s) failed by races"])
    assert "the same race as first reported during test_twice.py::test_first" in text


@pytest.mark.parametrize("extra", [["-p", "xdist", "-n", "2"], ["--parallel-threads=4"],
                                   ["-p", "xdist", "-n", "2", "--parallel-threads=2"]])
def test_the_same_race_fails_one_test_under_xdist_and_run_parallel(project, extra):
    # (on a free-threaded build pytest-run-parallel refuses to run once the GIL is back on:
    # racewatch's extensions must leave it off)
    pytest.importorskip("xdist" if "xdist" in extra else "pytest_run_parallel")
    if any(arg.startswith("--parallel-threads") for arg in extra):
        pytest.importorskip("pytest_run_parallel")
    project.makepyfile(test_twice=TWICE)
    result = race(project, "test_twice.py", "-rA", *extra)
    found = verdicts(result)
    assert sorted(found) == ["test_first", "test_second", "test_third"]
    assert sorted(found.values()) == [False, True, True]  # whichever report came first
    assert result.ret == 1
    result.stdout.fnmatch_lines(["racewatch: 1 test(s) failed by races"])


def test_racy_marker(project):
    project.makepyfile(test_marked="""
import pytest

from counter import Counter, hammer


@pytest.mark.racy
def test_known_race():
    hammer(Counter())


@pytest.mark.racy
def test_marked_but_clean():
    pass
""")
    result = race(project, "test_marked.py", "-rA")
    assert verdicts(result) == {"test_known_race": True, "test_marked_but_clean": False}
    result.stdout.fnmatch_lines(["*expected a data race (marked racy), none was detected*"])
    without = run(project, "test_marked.py", "--strict-markers")  # the marker is registered
    without.assert_outcomes(passed=2)


def test_races_in_setup_and_teardown_are_the_tests(project):
    project.makepyfile(test_fixtures="""
import pytest

from counter import Counter, hammer


@pytest.fixture
def raced_in_setup():
    hammer(Counter())
    yield


class Other:
    def __init__(self):
        self.m = 0

    def bump(self):
        self.m += 1


@pytest.fixture
def raced_in_teardown():
    yield
    hammer(Other())  # another pair: one already reported fails only its first test


def test_setup(raced_in_setup):
    pass


def test_teardown(raced_in_teardown):
    pass
""")
    result = race(project, "test_fixtures.py")
    result.assert_outcomes(passed=1, errors=2)  # teardown errors after a passed call
    errors = section(result, "ERRORS")
    assert "ERROR at setup of test_setup" in errors
    assert "ERROR at teardown of test_teardown" in errors
    assert errors.count(FAILED) == 2


def test_a_race_outside_any_test_fails_the_session(project):
    project.makeconftest("""
from counter import Counter, hammer

hammer(Counter())  # at import: during no test
""")
    result = race(project, "-p", "no:randomly")
    result.assert_outcomes(passed=2)  # test_racy meets the pair reported before it: passes
    assert result.ret == 1
    result.stdout.fnmatch_lines(["race detected outside of test execution"])
    clean_only = race(project, "-k", "clean")
    clean_only.assert_outcomes(passed=1, deselected=1)
    assert clean_only.ret == 1  # every test passed; the session fails all the same


@pytest.mark.parametrize("extra", [["-p", "xdist", "-n", "2"], ["--parallel-threads=2"]])
def test_xdist_and_run_parallel_give_the_same_verdicts(project, extra):
    pytest.importorskip("xdist" if "xdist" in extra else "pytest_run_parallel")
    serial = verdicts(race(project, "-rA"))
    result = race(project, "-rA", *extra)
    assert verdicts(result) == serial == {"test_racy": False, "test_clean": True}
    assert FAILED in result.stdout.str()
    result.stdout.fnmatch_lines(["racewatch: found * data race(s)"])


def test_run_parallel_turns_single_threaded_tests_into_racy_ones(project):
    """The README recipe: unsynchronized lazy caching passes single-threaded tests."""
    pytest.importorskip("pytest_run_parallel")
    project.makepyfile(memo="""
_cache = {}


def square(n):
    if n not in _cache:
        _cache[n] = n * n
    return _cache[n]


def cube(n):
    return n * n * n
""", test_memo="""
from memo import cube, square


def test_square():
    assert square(4) == 16


def test_cube():
    assert cube(3) == 27
""")
    race(project, "test_memo.py").assert_outcomes(passed=2)
    result = race(project, "test_memo.py", "-rA", "--parallel-threads=4")
    assert verdicts(result) == {"test_square": False, "test_cube": True}
    assert "memo.py" in result.stdout.str() and FAILED in result.stdout.str()


def test_xdist_race_outside_tests_fails_the_session(project):
    pytest.importorskip("xdist")
    project.makeconftest("""
from counter import Counter, hammer

hammer(Counter())
""")
    result = race(project, "-p", "xdist", "-n", "2", "-k", "clean")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["race detected outside of test execution"])


def test_pythonrace_runs_pytest_with_the_plugin(project, monkeypatch):
    monkeypatch.setenv("PYTHONRACE", f"runtime={RUNTIME}")
    result = run(project, "-rA")
    assert verdicts(result) == {"test_racy": False, "test_clean": True}
    assert result.ret == 1  # pytest's own status: the plugin had the last word, not 66
    assert result.stdout.str().count("racewatch: found") == 1
    assert "racewatch: found" not in result.stderr.str()


def test_pythonrace_and_pytest_options_conflict(project, monkeypatch):
    monkeypatch.setenv("PYTHONRACE", f"runtime={RUNTIME}")
    result = run(project, "--race-exitcode=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: racewatch: already started by -X race / PYTHONRACE*"])


@pytest.mark.parametrize("args, message", [
    (["--race-exitcode=abc"], "ERROR: racewatch: bad value 'abc' for option 'exitcode' "
                              "(pytest option --race-exitcode): expected an exit status from 1 "
                              "to 255"),
    (["--race-halt-on-error=maybe"], "*argument --race-halt-on-error: ignored explicit "
                                     "argument 'maybe'"),
    (["--race-suppressions=missing.supp"], "ERROR: racewatch: cannot read suppressions file*"),
])
def test_malformed_options_are_one_line_errors(project, args, message):
    result = race(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_malformed_ini_option_names_it(project):
    project.makeini("[pytest]\nrace = maybe\n")
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: racewatch: bad value for ini option 'race': *maybe*"])


def test_unknown_pytest_option_is_refused(project):
    result = race(project, "--race-bogus=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: racewatch: unknown option '--race-bogus' (pytest)"])
    typo = race(project, "--race-halt-on-eror")
    typo.stderr.fnmatch_lines(["ERROR: racewatch: unknown option '--race-halt-on-eror' "
                               "(pytest); did you mean '--race-halt-on-error'?"])


def test_bad_pyproject_option_is_refused(project):
    project.makefile(".toml", pyproject="[project]\nname = 'demo'\n[tool.racewatch]\nnope = 1\n")
    result = race(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: racewatch: unknown option 'nope' (*pyproject.toml*"])


def test_suppressions_file_and_inline_comment(project):
    project.makefile(".supp", race="# the counter's race is known\nrace_top:Counter.bump\n")
    result = race(project, "--race-suppressions=race.supp")
    result.assert_outcomes(passed=2)
    assert "racewatch: found" not in result.stdout.str()
    project.makepyfile(counter=COUNTER.replace("self.n += 1", "self.n += 1  # racewatch: ignore"))
    race(project).assert_outcomes(passed=2)


@pytest.mark.parametrize("extra", [[], ["-p", "xdist", "-n", "2"]])
def test_print_suppressions_counts_every_process(project, extra):
    project.makefile(".supp", race="race_top:Counter.bump\nrace:never_called\n")
    result = race(project, "--race-suppressions=race.supp", "--race-print-suppressions", *extra)
    result.assert_outcomes(passed=2)
    text = result.stdout.str()
    assert "racewatch: suppressions used:" in text and "race_top:Counter.bump" in text
    assert "never_called" not in text and "racewatch: found" not in text
    assert "suppressions used" not in result.stderr.str()
    result = race(project, "--race-print-suppressions", "-k", "clean", *extra)
    assert "racewatch: no suppressions used" in result.stdout.str()


def test_pyproject_options_apply_to_pytest(project):
    project.makefile(".toml", pyproject="[project]\nname = 'demo'\n"
                                        "[tool.racewatch]\nsuppressions = 'race.supp'\n")
    project.makefile(".supp", race="race:counter.py\n")
    race(project).assert_outcomes(passed=2)


def test_log_path_keeps_every_report_and_the_summary(project):
    (project.path / "reports").mkdir()
    result = race(project, f"--race-log-path={project.path / 'reports' / 'race'}")
    result.assert_outcomes(failed=1, passed=1)
    logs = list((project.path / "reports").iterdir())
    assert len(logs) == 1 and logs[0].name.startswith("race.")
    text = logs[0].read_text()
    assert "WARNING: DATA RACE" in text and "racewatch: found" in text


@pytest.mark.parametrize("select, racy", [((), True), (("-k", "clean"), False)])
def test_json_log_is_a_complete_report_with_or_without_races(project, select, racy):
    (project.path / "reports").mkdir()
    prefix = project.path / "reports" / "race"
    race(project, "--race-format=json", f"--race-log-path={prefix}", *select)
    (log,) = (project.path / "reports").iterdir()
    kinds = [line.split('"type": "')[1].split('"')[0] for line in log.read_text().splitlines()]
    assert kinds[0] == "header" and kinds[-1] == "summary"
    assert set(kinds[1:-1]) == ({"race"} if racy else set())  # read/write and write/write


def test_a_lock_order_inversion_fails_the_test_that_closed_the_cycle(project):
    project.makepyfile(test_locks="""
import threading

first, second = threading.Lock(), threading.Lock()


def take(a, b):
    with a:
        with b:
            pass


def run(a, b):
    worker = threading.Thread(target=take, args=(a, b))
    worker.start()
    worker.join()


def test_one_order():
    run(first, second)


def test_other_order():
    run(second, first)


def test_same_order_again():
    run(first, second)
""")
    result = race(project, "-rA", "test_locks.py")
    assert verdicts(result) == {"test_one_order": True, "test_other_order": False,
                                "test_same_order_again": True}
    failures = section(result, "FAILURES")
    assert "WARNING: lock-order-inversion (potential deadlock)" in failures
    assert "lock-order inversion (potential deadlock) detected during execution of test" in \
        failures and "race detected" not in failures
    result.stdout.fnmatch_lines(
        ["racewatch: found 1 lock-order inversion(s) (potential deadlock)"])


CHILD = """
import os
import subprocess
import sys

from counter import Counter, hammer

CHILD_CODE = "from counter import Counter, hammer; hammer(Counter())"


def test_runs_a_racy_child():
    env = dict(os.environ, PYTHONRACE="1")
    subprocess.check_call([sys.executable, "child.py"], env=env)  # the child's own status: 0
"""


@pytest.mark.parametrize("extra", [[], ["-p", "xdist", "-n", "2"]], ids=["plain", "xdist"])
def test_races_only_in_a_child_process_fail_the_run(project, extra):
    """The test passes (its child exits 0, as under python); the run exits 66 and its summary
    names the child."""
    project.makepyfile(test_child=CHILD, child="from counter import Counter, hammer\n"
                                                "hammer(Counter())\n")
    result = race(project, "-rA", "-k", "child", *extra)
    result.assert_outcomes(passed=1)
    assert result.ret == 66
    result.stdout.fnmatch_lines(["*= racewatch =*",
                                 "racewatch: 1 other process(es) of this run found races:",
                                 "  pid *: 1 data race(s) in child.py"])


def installed_project(pytester, name="demo_pkg"):
    """A src-layout project `demo` whose package was installed non-editable, as tox installs
    it: the copy the tests import lies in a `site-packages` directory, named by its RECORD."""
    site = pytester.path / "venv" / "lib" / "site-packages"
    for base in (pytester.path / "src" / name, site / name):
        base.mkdir(parents=True)
        (base / "__init__.py").write_text("")
        (base / "counter.py").write_text(COUNTER)
    info = site / "demo-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{name}/counter.py,,\n")
    pytester.makepyfile(test_counter=TESTS.replace("from counter", f"from {name}.counter"))
    (pytester.path / "counter.py").unlink()
    return str(site)


def test_the_projects_package_is_instrumented_where_it_is_installed(project, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", installed_project(project))
    result = race(project, "-rA")
    assert verdicts(result) == {"test_racy": False, "test_clean": True}
    assert "site-packages/demo_pkg/counter.py" in result.stdout.str()


def test_a_package_imported_before_racewatch_is_named_once(project, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", installed_project(project))
    result = race(project, "-p", "demo_pkg.counter", "-n", "2", "-p", "xdist")
    warning = ("racewatch: warning: demo_pkg was imported before racewatch started, so it is "
               "not instrumented")
    assert result.stdout.str().count(warning) == 1, result.stdout.str()


@pytest.mark.parametrize("flag", ["--race-cover", "--race-cache", "--race-halt-on-error"])
def test_an_on_off_flag_keeps_the_path_after_it(project, flag):
    project.mkpydir("more")
    project.path.joinpath("more", "test_more.py").write_text("def test_more():\n    pass\n")
    result = race(project, "-rA", flag, "more")
    assert verdicts(result) == {"test_more": True}, result.stdout.str()


def test_unittest_style_stacks_end_at_the_test(project):
    project.makepyfile(test_unit="""
import threading
import unittest

from counter import Counter


class Case(unittest.TestCase):
    def setUp(self):
        self.counter = Counter()

    def test_racy(self):
        workers = [threading.Thread(target=self.counter.bump) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
""")
    result = race(project, "test_unit.py")
    failures = section(result, "FAILURES")
    assert "Case.test_racy()" in failures
    for machinery in ("pluggy", "_pytest", "unittest/case.py", "runtest"):
        assert machinery not in failures, failures


@pytest.mark.parametrize("xdist", [(), ("-p", "xdist", "-n", "2")], ids=["one", "xdist"])
def test_race_cover_prints_a_coverage_table(project, xdist):
    project.path.joinpath("counter.py").write_text(COUNTER + "\n\ndef unused():\n    return 0\n")
    result = race(project, "--race-cover", "--race-cover-report=term-missing", *xdist)
    text = result.stdout.str()
    table = text[text.index("= racewatch coverage ="):]
    row = next(line.split() for line in table.splitlines() if line.startswith("counter.py"))
    lines, missed = int(row[1]), int(row[2])
    assert (missed, row[-1]) == (1, str(COUNTER.count("\n") + 4))  # `return 0` never ran
    assert lines > missed and row[3] == f"{100 * (lines - missed) / lines:.0f}%"
    quiet = race(project, "--race-cover", "--race-cover-report=none", *xdist)
    assert "racewatch coverage" not in quiet.stdout.str()


def test_a_package_without_sources_is_named_once(project):
    import py_compile
    legacy = project.mkpydir("legacy")
    source = legacy / "mod.py"
    source.write_text("VALUE = 1\n")
    py_compile.compile(str(source), cfile=str(legacy / "mod.pyc"), doraise=True)
    source.unlink()  # installed as a .pyc alone: nothing racewatch can rewrite
    project.makepyfile(test_legacy="import legacy.mod\n\ndef test_value():\n"
                                   "    assert legacy.mod.VALUE == 1\n")
    result = race(project, "test_legacy.py", "-p", "xdist", "-n", "2")
    text = result.stdout.str()
    assert text.count("racewatch: warning: legacy has no source files (") == 1, text
    assert "mod.pyc is a .pyc alone), so it is not instrumented" in text
