"""Run one CPython test suite with unittest and write every test's outcome to a JSON file.

usage: stdlib_suite.py SUITE OUTPUT [MODULE ...]
  SUITE    a test module such as test.test_fractions
  OUTPUT   where the JSON goes (a file, so the suite's own output cannot mix in)
  MODULE   modules under test (`email` also means email.*); under racewatch the report says
           how many of their code objects were instrumented, and what the rewriter failed on.
           Those imported already (racewatch imports threading, weakref, functools, enum,
           typing... itself, before its import hook) are instrumented in place first.
"""

import gc
import json
import random
import re
import sys
import types
import unittest

from test import support


class Outcomes(unittest.TestResult):
    """Records `{test id: [outcome, ...]}`; subtests count as tests of their own."""

    def __init__(self):
        super().__init__()
        self.outcomes = {}
        self.details = {}

    def _record(self, test, outcome, err=None):
        # Subtest ids can show reprs like `<function f at 0x7f...>` and test.support's
        # per-process file names (`@test_1234_tmp`), which differ per process.
        test_id = re.sub(r" at 0x[0-9a-f]+", " at 0x?", test.id())
        test_id = re.sub(r"@test_[0-9]+_tmp", "@test_?_tmp", test_id)
        self.outcomes.setdefault(test_id, []).append(outcome)
        if err is not None:
            self.details[test_id] = self._exc_info_to_string(err, test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "fail", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skip")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            self._record(subtest, "pass")
        else:
            self._record(subtest, "fail" if issubclass(err[0], test.failureException)
                         else "error", err)


def instrumentation(patterns):
    """Per module under test, codecheck's report; and the rewriter's failures. The modules are
    those in sys.modules and every other module namespace still alive: the fresh copies test
    modules import (`py_queue = import_fresh_module("queue")`, or `_pydecimal` behind a fresh
    `decimal`, gone from sys.modules but alive in its functions), named `queue (fresh copy)`."""
    import codecheck
    from racewatch.rewriter import instrument

    found = {}
    for name, module in sorted(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is dict:
            found.setdefault(id(namespace), (name, module))
    # Fresh copies bound in a live module (test_queue's py_queue): found without the collector,
    # whose get_objects() does not list them on the free-threaded build.
    for _, module in list(found.values()):
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType) and type(vars(value)) is dict \
                    and id(vars(value)) not in found:
                found[id(vars(value))] = (f"{value.__name__} (fresh copy)", value)
    for namespace in gc.get_objects():
        if (type(namespace) is dict and id(namespace) not in found and "__spec__" in namespace
                and isinstance(namespace.get("__name__"), str)
                and isinstance(namespace.get("__file__"), str)):
            copy = types.ModuleType(namespace["__name__"])
            copy.__dict__.update(namespace)
            found[id(namespace)] = (f"{namespace['__name__']} (fresh copy)", copy)
    modules = {}
    for name, module in found.values():
        # by its name in sys.modules: _pydecimal calls itself `decimal`
        if _under_test(name.removesuffix(" (fresh copy)"), patterns) \
                and getattr(module, "__file__", None):
            report = codecheck.report(module)
            if name in modules:  # two fresh copies: both count
                report = {key: modules[name][key] + report[key] for key in report}
            modules[name] = report
    return {"modules": modules, "failures": [list(f) for f in instrument.FAILURES]}


def _under_test(name, patterns):
    return any(name == p or name.startswith(p + ".") for p in patterns)


def instrument_imported(patterns):
    """Under racewatch: the modules under test imported before its hook get rewritten code."""
    from racewatch import session
    from racewatch.rewriter import inplace
    for name, module in sorted(sys.modules.items()):
        if _under_test(name, patterns):
            inplace.instrument_loaded(module, session.current.instrumenter)


def main(argv):
    suite_name, output, patterns = argv[0], argv[1], argv[2:]
    if "racewatch.rewriter.instrument" in sys.modules:  # running under `racewatch run`
        instrument_imported(patterns)
    support.use_resources = []  # as regrtest without -u: resource-hungry tests skip, both runs
    random.seed(0)  # some suites draw unseeded inputs (and name subtests after them)
    result = Outcomes()
    unittest.defaultTestLoader.loadTestsFromName(suite_name).run(result)
    report = {"outcomes": result.outcomes, "details": result.details, "racewatch": None}
    if "racewatch.rewriter.instrument" in sys.modules:  # running under `racewatch run`
        report["racewatch"] = instrumentation(patterns)
    with open(output, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
