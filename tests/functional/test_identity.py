"""Instrumented code behaves exactly like the original: the torture program, byte for byte."""

import json
import os

import pytest

from tests import helpers

TORTURE = os.path.join(helpers.PROGRAMS, "torture.py")
# mode -> (the program's flags, racewatch's flags): with coverage on too, line probes and all.
MODES = {"plain": ([], []), "settrace": (["--trace"], []),
         "cover": ([], ["--cover"]), "cover-settrace": (["--trace"], ["--cover"]),
         "cover-only": ([], ["--cover", "--no-race"])}
# A runtime fallback notice is racewatch talking, not the program (until the C runtime is built).
NOTICE = "racewatch: C runtime unavailable"
LAST_LINE = "AttributeError: 'Box' object has no attribute 'history'"


def identity_env(tmp):
    """Both runs hash strings alike, so set and dict orders cannot differ by chance; coverage
    data goes to `tmp`, by way of a coverage config naming the data file there."""
    rcfile = tmp / "coveragerc"
    rcfile.write_text(f"[run]\ndata_file = {tmp / '.coverage'}\n")
    return helpers.clean_env(PYTHONHASHSEED="0", COVERAGE_RCFILE=str(rcfile))


def program_stderr(text):
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(NOTICE))


@pytest.fixture(scope="module", params=sorted(MODES))
def runs(request, tmp_path_factory):
    """The torture program run with `python` and with `racewatch run`, plus their side files."""
    tmp = tmp_path_factory.mktemp(request.param)
    flags, watch_flags = MODES[request.param]
    side = {"python": tmp / "python.json", "racewatch": tmp / "racewatch.json"}
    results = {
        "python": helpers.run(helpers.python_args(
            TORTURE, *flags, f"--instrumented={side['python']}"),
            cwd=helpers.ROOT, env=identity_env(tmp)),
        # --no-cache: rewrite in this run, whatever a __pycache__ may hold.
        "racewatch": helpers.run(helpers.racewatch_args(
            "--no-cache", *watch_flags, TORTURE, *flags, f"--instrumented={side['racewatch']}"),
            cwd=helpers.ROOT, env=identity_env(tmp)),
    }
    if watch_flags:  # the coverage runs really measured
        assert len(list(tmp.glob(".racewatch-cover.*.json"))) == 1, results["racewatch"].stderr
        assert len(list(tmp.glob(".coverage.racewatch.*"))) == 1
    reports = {name: json.loads(path.read_text()) if path.exists() else None
               for name, path in side.items()}
    return results, reports


def test_program_runs_to_its_uncaught_error(runs):
    results, _ = runs
    plain = results["python"]
    assert plain.returncode == 1, plain.stderr
    assert "== main_module" in plain.stdout
    assert "During handling of the above exception" in plain.stderr
    assert plain.stderr.rstrip().endswith(LAST_LINE), plain.stderr


def test_same_exit_status(runs):
    results, _ = runs
    assert results["racewatch"].returncode == results["python"].returncode, \
        results["racewatch"].stderr


def test_same_stdout(runs):
    results, _ = runs
    assert results["racewatch"].stdout == results["python"].stdout


def test_same_stderr(runs):
    results, _ = runs
    assert program_stderr(results["racewatch"].stderr) == results["python"].stderr


def test_racewatch_instrumented_both_modules(runs):
    results, reports = runs
    assert reports["racewatch"] is not None, results["racewatch"].stderr
    for module, report in reports["racewatch"].items():
        assert report["instrumented"] > 0, module
        assert report["missed"] == [], module
    # The same check on the plain run sees nothing instrumented: the side channel can tell.
    assert all(r["instrumented"] == 0 for r in reports["python"].values())
