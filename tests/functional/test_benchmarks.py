"""The benchmark runner's plumbing and the workloads' output contract (no timing asserted)."""

import glob
import json
import os
import sys

import pytest

from tests import helpers

BENCHMARKS = os.path.join(helpers.ROOT, "benchmarks")
RUNNER = os.path.join(BENCHMARKS, "run.py")
WORKLOADS = sorted(glob.glob(os.path.join(BENCHMARKS, "workloads", "*.py")))
VARIANT = {"c": "race-c", "python": "race-py"}[helpers.RUNTIME]
TINY = "0.001"


def run_runner(*args):
    return helpers.run(helpers.python_args(RUNNER, "--python", sys.executable,
                                           "--workloads", "nbody_obj", "--variants", VARIANT,
                                           "--repeat", "1", "--scale", TINY, *args))


def test_runner_prints_the_table_and_equal_checksums(tmp_path):
    saved = tmp_path / "results.json"
    result = run_runner("--json", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = result.stdout.splitlines()
    assert any(r.startswith("nbody_obj") and " plain " in r and "1.00x" in r for r in rows)
    assert any(r.split()[:1] == [VARIANT] and r.count("x") >= 2 for r in rows)
    runs = json.loads(saved.read_text())["runs"]
    timed = [r for r in runs if not r["warmup"]]
    assert sorted(r["variant"] for r in timed) == sorted(["plain", VARIANT])
    assert all(r["verdict"] == "ok" and r["status"] == 0 and r["cpu"] > 0 for r in runs)
    assert len({r["checksum"] for r in timed}) == 1


def test_runner_reports_a_failed_run_and_exits_1():
    result = run_runner("--timeout", "0.001")
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "timed out" in result.stderr


@pytest.mark.parametrize("script", WORKLOADS, ids=os.path.basename)
def test_workload_prints_exactly_one_checksum_line(script):
    result = helpers.run(helpers.python_args(script, TINY))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("checksum ")
