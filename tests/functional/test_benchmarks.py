"""The benchmark runner's plumbing and the workloads' output contract (no timing asserted)."""

import glob
import json
import os
import re
import shutil
import sys

import pytest

from tests import helpers

BENCHMARKS = os.path.join(helpers.ROOT, "benchmarks")
RUNNER = os.path.join(BENCHMARKS, "run.py")
WORKLOADS = sorted(glob.glob(os.path.join(BENCHMARKS, "workloads", "*.py")))
VARIANT = {"c": "race-c", "python": "race-py"}[helpers.RUNTIME]
TINY = "0.001"
# A table row: workload (first row only), variant, then cpu s, slow and rss of one Python.
ROW = re.compile(r"^(?:nbody_obj)?\s+(\S+)\s+\|\s+\d+\.\d{3}"
                 r"\s+(\d+\.\d\dx)\s+(\d+\.\d\dx)$", re.M)


def run_runner(*args):
    return helpers.run(helpers.python_args(RUNNER, "--python", sys.executable,
                                           "--workloads", "nbody_obj", "--variants", VARIANT,
                                           "--repeat", "1", "--scale", TINY, *args))


def test_runner_prints_the_table_and_equal_checksums(tmp_path):
    saved = tmp_path / "results.json"
    result = run_runner("--json", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {variant: ratios for variant, *ratios in ROW.findall(result.stdout)}
    assert set(rows) == {"plain", VARIANT}
    assert rows["plain"] == ["1.00x", "1.00x"]
    runs = json.loads(saved.read_text())["runs"]
    timed = [r for r in runs if not r["warmup"]]
    assert sorted(r["variant"] for r in timed) == sorted(["plain", VARIANT])
    assert all(r["verdict"] == "ok" and r["status"] == 0 and r["cpu"] > 0 for r in runs)
    assert len({r["checksum"] for r in timed}) == 1


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_runner_counts_instructions_under_valgrind(tmp_path):
    saved = tmp_path / "results.json"
    result = run_runner("--instructions", "--json", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "G instr" in result.stdout
    timed = [r for r in json.loads(saved.read_text())["runs"] if not r["warmup"]]
    counts = {r["variant"]: r["instructions"] for r in timed}
    # Python starting and ending alone executes tens of millions of instructions, and the
    # instrumented run executes more than the plain one.
    assert 10_000_000 < counts["plain"] < counts[VARIANT], counts
    warmups = [r for r in json.loads(saved.read_text())["runs"] if r["warmup"]]
    assert all(r["instructions"] is None for r in warmups)  # warm-ups run without valgrind


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
