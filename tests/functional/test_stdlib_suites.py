"""CPython's own test suites give the same outcomes against instrumented stdlib modules."""

import json
import os

import pytest

from tests import helpers

RUNNER = os.path.join(helpers.PROGRAMS, "stdlib_suite.py")

# (suite, modules under test as --include patterns). Modules racewatch imports itself before
# its hook (threading, weakref, functools, enum, typing, json...) are instrumented in place by
# the runner (rewriter/inplace.py): each of their functions runs rewritten code; the fresh
# copies some suites import (import_fresh_module) go through the hook.
SUITES = [
    ("test.test_fractions", "fractions"),
    ("test.test_pprint", "pprint"),
    ("test.test_shlex", "shlex"),
    ("test.test_calendar", "calendar"),
    ("test.test_ipaddress", "ipaddress"),
    ("test.test_graphlib", "graphlib"),
    ("test.test_optparse", "optparse"),
    ("test.test_urlparse", "urllib.parse"),
    ("test.test_htmlparser", "html.parser"),
    ("test.test_csv", "csv"),
    ("test.test_plistlib", "plistlib"),
    ("test.test_gettext", "gettext"),
    ("test.test_configparser", "configparser"),
    ("test.test_difflib", "difflib"),
    ("test.test_argparse", "argparse"),
    ("test.test_statistics", "statistics"),
    ("test.test_decimal", "_pydecimal"),  # decimal's pure-Python twin
    ("test.test_json", "json"),
    ("test.test_copy", "copy"),
    ("test.test_dataclasses", "dataclasses"),
    ("test.test_functools", "functools"),
    ("test.test_collections", "collections"),
    ("test.test_contextlib", "contextlib"),
    ("test.test_enum", "enum"),
    ("test.test_typing", "typing"),
    ("test.test_textwrap", "textwrap"),
    ("test.test_heapq", "heapq"),
    ("test.test_base64", "base64"),
    ("test.test_string", "string"),
    ("test.test_fnmatch", "fnmatch"),
    ("test.test_colorsys", "colorsys"),
    ("test.test_reprlib", "reprlib"),
    ("test.test_getopt", "getopt"),
    ("test.test_glob", "glob"),
    ("test.test_tomllib", "tomllib"),
    ("test.test_abc", "_py_abc"),  # abc's pure-Python twin
    # threaded: races they report are listed, with a verdict each, in the closing note
    ("test.test_sched", "sched"),
    ("test.test_threading", "threading"),
    ("test.test_weakref", "weakref"),
    ("test.test_queue", "queue"),
    ("test.test_logging", "logging"),
    ("test.test_concurrent_futures", "concurrent.futures"),  # not shipped by every build
]
THREADED = {"test.test_sched", "test.test_threading", "test.test_weakref", "test.test_queue",
            "test.test_logging", "test.test_concurrent_futures"}
# Millions of probe calls, or many threads and processes waiting: the slowest, left out under
# the pure-Python runtime (`-m "not slow"`; every other tox env runs them).
SLOW = {"test.test_configparser", "test.test_difflib", "test.test_argparse",
        "test.test_statistics", "test.test_decimal", "test.test_json", "test.test_threading",
        "test.test_weakref", "test.test_queue", "test.test_logging",
        "test.test_concurrent_futures"}
# Differences of the pure-Python runtime alone (its probes are Python code): suite -> reason.
# Known limitations, listed in the README; the C runtime passes these suites.
PYTHON_RUNTIME_DIFFERS = {
    "test.test_tomllib": "the twin's probes are Python frames: a parser nested to just under "
                         "the recursion limit (test_inline_array_recursion_limit) exceeds it",
}
# Minutes of threads and processes waiting even under the C runtime (358 s on 3.15): run once per
# CI run, where RACEWATCH_TEST_RECIPES is set (tox.ini's py311-c), or wherever it is set by hand.
ONCE_PER_CI = {"test.test_concurrent_futures"}
ONCE = pytest.mark.skipif(not os.environ.get("RACEWATCH_TEST_RECIPES"),
                          reason="runs once per CI run: RACEWATCH_TEST_RECIPES=1")
KNOWN = PYTHON_RUNTIME_DIFFERS if helpers.RUNTIME == "python" else {}
PARAMS = [pytest.param(suite, modules, id=suite.rpartition(".")[2],
                       marks=([pytest.mark.slow] if suite in SLOW else [])
                       + ([ONCE] if suite in ONCE_PER_CI else [])
                       + ([pytest.mark.xfail(reason=KNOWN[suite])] if suite in KNOWN else []))
          for suite, modules in SUITES]


def suite_env():
    """Both runs hash strings alike (the runner seeds `random` itself)."""
    return helpers.clean_env(PYTHONHASHSEED="0")


def run_suite(prefix, suite, output, patterns):
    """The runner's report for `suite`, run by the interpreter command line `prefix`."""
    result = helpers.run([*prefix, RUNNER, suite, str(output), *patterns],
                         cwd=helpers.ROOT, env=suite_env())
    assert output.exists(), f"runner wrote nothing (status {result.returncode}):\n" \
                            f"{result.stderr[-3000:]}"
    return json.loads(output.read_text())


def test_at_least_forty_modules():
    """The identity test covers at least 40 modules (issue 16)."""
    assert len({m for _, patterns in SUITES for m in patterns.split(",")}) >= 40


@pytest.mark.parametrize("suite, modules", PARAMS)
def test_same_outcomes(suite, modules, tmp_path):
    patterns = modules.split(",")
    plain = run_suite(helpers.python_args(), suite, tmp_path / "python.json", patterns)
    if list(plain["outcomes"]) == [f"unittest.loader._FailedTest.{suite.rpartition('.')[2]}"] \
            and "ModuleNotFoundError" in str(plain["details"]):
        pytest.skip(f"this Python ships no {suite}")
    # --no-cache: rewrite in this run, so FAILURES covers every module under test.
    log = tmp_path / "race"
    raced = run_suite(helpers.racewatch_args("--no-cache", f"--include={modules}",
                                             "--format=json", f"--log-path={log}"),
                      suite, tmp_path / "racewatch.json", patterns)
    assert any("pass" in outcome for outcome in plain["outcomes"].values()), \
        "the suite did not really run"

    instrumentation = raced["racewatch"]
    assert instrumentation is not None, "the racewatch run did not see racewatch"
    assert instrumentation["failures"] == []
    reports = instrumentation["modules"]
    for pattern in patterns:  # the module (or package) in sys.modules, or fresh copies
        instrumented = [report["instrumented"] for name, report in reports.items()
                        if name.removesuffix(" (fresh copy)") == pattern
                        or name.startswith(pattern + ".")]
        assert sum(instrumented) > 0, (pattern, reports)
    assert {name: r["missed"] for name, r in reports.items() if r["missed"]} == {}

    differ = {test: (plain["outcomes"].get(test), raced["outcomes"].get(test))
              for test in plain["outcomes"].keys() | raced["outcomes"].keys()
              if plain["outcomes"].get(test) != raced["outcomes"].get(test)}
    details = "".join(f"\n--- {test}\n{raced['details'].get(test) or plain['details'].get(test)}"
                      for test in sorted(differ)[:5])
    assert differ == {}, details
    # correct code: racewatch, detecting while a single-threaded suite ran, reported no race
    reports = [line for path in tmp_path.glob("race.*") for line in path.read_text().splitlines()
               if '"type": "race"' in line]
    if suite not in THREADED:
        assert reports == [], "\n".join(reports[:3])
