"""CPython's own test suites give the same outcomes against instrumented stdlib modules."""

import json
import os

import pytest

from tests import helpers

RUNNER = os.path.join(helpers.PROGRAMS, "stdlib_suite.py")

# (suite, modules under test as --include patterns): pure-Python modules racewatch never
# imports itself, so the import hook sees them. json, textwrap, heapq, base64 and string
# would qualify but are imported by racewatch's runtime.
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
]
# Millions of probe calls each: the slowest under the pure-Python runtime (`-m "not slow"`).
SLOW = {"test.test_configparser", "test.test_difflib", "test.test_argparse",
        "test.test_statistics", "test.test_decimal"}
PARAMS = [pytest.param(suite, modules, id=suite.rpartition(".")[2],
                       marks=[pytest.mark.slow] if suite in SLOW else [])
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


def test_modules_under_test_are_not_imported_by_racewatch():
    """Else the hook never sees them; `instrumented > 0` below would fail less clearly."""
    modules = [m for _, patterns in SUITES for m in patterns.split(",")]
    code = "import sys, racewatch.cli; print(sorted(set(sys.argv[1:]) & set(sys.modules)))"
    result = helpers.run(helpers.python_args("-c", code, *modules), env=suite_env())
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


@pytest.mark.parametrize("suite, modules", PARAMS)
def test_same_outcomes(suite, modules, tmp_path):
    patterns = modules.split(",")
    plain = run_suite(helpers.python_args(), suite, tmp_path / "python.json", patterns)
    # --no-cache: rewrite in this run, so FAILURES covers every module under test.
    log = tmp_path / "race"
    raced = run_suite(helpers.racewatch_args("--no-cache", f"--include={modules}",
                                             "--format=json", f"--log-path={log}"),
                      suite, tmp_path / "racewatch.json", patterns)
    assert ["pass"] in plain["outcomes"].values(), "the suite did not really run"

    instrumentation = raced["racewatch"]
    assert instrumentation is not None, "the racewatch run did not see racewatch"
    assert instrumentation["failures"] == []
    reports = instrumentation["modules"]
    for pattern in patterns:  # the module in sys.modules, or a fresh copy the tests keep
        instrumented = [reports.get(name, {}).get("instrumented", 0)
                        for name in (pattern, f"{pattern} (fresh copy)")]
        assert max(instrumented) > 0, (pattern, reports)
    assert {name: r["missed"] for name, r in reports.items() if r["missed"]} == {}

    differ = {test: (plain["outcomes"].get(test), raced["outcomes"].get(test))
              for test in plain["outcomes"].keys() | raced["outcomes"].keys()
              if plain["outcomes"].get(test) != raced["outcomes"].get(test)}
    details = "".join(f"\n--- {test}\n{raced['details'].get(test) or plain['details'].get(test)}"
                      for test in sorted(differ)[:5])
    assert differ == {}, details
    # correct code: racewatch, detecting while the suite ran, reported no race
    reports = [line for path in tmp_path.glob("race.*") for line in path.read_text().splitlines()
               if '"type": "race"' in line]
    assert reports == [], "\n".join(reports[:3])
