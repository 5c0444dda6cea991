"""Coverage over processes: fork children count only their own part, multiprocessing workers
of every start method and subprocesses are counted, and the files survive how processes end
(os._exit, SIGTERM, kill -9 with a periodic flush, all at once, killed in the middle of a write)."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import helpers
from tests.cover_helpers import counts_files, coverage_files, cover_run, line_of, load, summed

PROGRAMS = helpers.PROGRAMS
METHODS = [m for m in ("fork", "spawn", "forkserver")
           if m in multiprocessing.get_all_start_methods()]


def program(name):
    return os.path.join(PROGRAMS, name)


def counted(directory, name, marker="# the counted line"):
    path = program(name)
    return summed(directory).get(os.path.realpath(path), {}).get(line_of(path, marker), 0)


def wait_for(predicate, what, timeout=120):
    """Poll until `predicate()` holds (an event, never a duration, decides the test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def popen(tmp_path, *args):
    return subprocess.Popen(helpers.racewatch_args(*args), cwd=str(tmp_path),
                            env=helpers.clean_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
@pytest.mark.parametrize("ending", ["exit", "_exit"])
def test_fork_child_counts_only_its_own_part(tmp_path, ending):
    proc = cover_run(tmp_path, program("cover_fork.py"), ending)
    assert proc.returncode == 0 and "child status 0" in proc.stdout, proc.stderr
    assert len(counts_files(tmp_path)) == 2 and len(coverage_files(tmp_path)) == 2
    assert counted(tmp_path, "cover_fork.py") == 475_000  # not 875,000: no double counting


@pytest.mark.parametrize("method", METHODS)
def test_multiprocessing_workers_are_counted_exactly(tmp_path, method):
    proc = cover_run(tmp_path, program("cover_pools.py"), method)
    assert proc.returncode == 0 and proc.stdout == "4995000 0\n", proc.stderr
    assert "racewatch" not in proc.stderr, proc.stderr
    assert counted(tmp_path, "cover_pools.py") == 10_500
    for path in counts_files(tmp_path):
        assert load(path)["final"] is True


def test_subprocesses_are_counted(tmp_path):
    proc = cover_run(tmp_path, program("cover_subprocess.py"))
    assert proc.returncode == 0 and proc.stdout == "parent done\n", proc.stderr
    assert len(counts_files(tmp_path)) == 4
    assert counted(tmp_path, "cover_subprocess.py") == 3 * 1000 + 1


def test_sigterm_writes_then_dies_of_it(tmp_path):
    marker = tmp_path / "spun"
    child = popen(tmp_path, "--cover", program("cover_signal.py"), str(marker), "12345")
    wait_for(marker.exists, "the program to spin")
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGTERM  # died of it, as without racewatch
    assert load(counts_files(tmp_path)[0])["final"] is True
    assert counted(tmp_path, "cover_signal.py") == 12345


def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path):
    progress = tmp_path / "progress"
    child = popen(tmp_path, "--cover", "--cover-flush=0.05", program("cover_progress.py"),
                  str(progress))
    seen = []

    def flushed_some_work():
        files = counts_files(tmp_path)
        if not files:
            return False
        seen.append(counted(tmp_path, "cover_progress.py"))  # a partial file would not parse
        return seen[-1] > 0
    try:
        wait_for(flushed_some_work, "a flush with some work in it")
        wait_for(lambda: counted(tmp_path, "cover_progress.py") > seen[-1], "a later flush")
    finally:
        child.kill()
        child.communicate(timeout=120)
    (path,) = counts_files(tmp_path)
    data = load(path)
    assert data["final"] is False
    done = len(progress.read_text().split())
    hits = counted(tmp_path, "cover_progress.py")
    assert seen[-1] < hits <= (done + 1) * 1000  # what the last flush saw, never more than ran


def test_processes_ending_at_the_same_instant_each_write_their_files(tmp_path):
    readies = [tmp_path / f"ready{i}" for i in range(8)]
    children = [popen(tmp_path, "--cover", program("cover_together.py"), str(r))
                for r in readies]
    try:
        wait_for(lambda: all(r.exists() for r in readies), "all processes to be ready")
        for child in children:  # released together
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            child.stdin.close()
        for child in children:
            child.wait(timeout=120)
    finally:
        for child in children:
            child.kill()
    assert [c.returncode for c in children] == [0] * 8
    files = counts_files(tmp_path)
    assert len(files) == 8 and len(coverage_files(tmp_path)) == 8
    assert len({load(f)["pid"] for f in files}) == 8
    assert counted(tmp_path, "cover_together.py") == 8000
    combined = helpers.run([sys.executable, "-m", "racewatch", "cover", "combine"],
                           cwd=str(tmp_path))
    assert combined.returncode == 0, combined.stderr
    assert counts_files(tmp_path) == []
    data = load(tmp_path / ".racewatch-cover.json")
    spin = line_of(program("cover_together.py"), "# the counted line")
    assert data["files"][os.path.realpath(program("cover_together.py"))]["lines"][str(spin)] == 8000


MIDWRITE = """\
import os, sys
import big
from racewatch.cover import collector
collector.current.flush()                      # a complete file under the final name
os.environ["RACEWATCH_COVER_TEST_PAUSE"] = sys.argv[1]
big.f()
collector.current.flush()                      # stops after its first chunk: killed there
"""


def test_kill_9_in_the_middle_of_a_write_leaves_the_last_complete_file(tmp_path):
    (tmp_path / "big.py").write_text("def f():\n" + "".join(f"    x{i} = {i}\n"
                                                         for i in range(6000)))
    (tmp_path / "midwrite.py").write_text(MIDWRITE)
    marker = tmp_path / "paused"
    child = popen(tmp_path, "--cover", "midwrite.py", str(marker))
    try:
        wait_for(marker.exists, "the write to stop after its first chunk")
    finally:
        child.kill()
        child.communicate(timeout=120)
    (path,) = counts_files(tmp_path)  # the first, complete file: the kill never touched it
    data = load(path)
    assert data["final"] is False
    big = data["files"][os.path.realpath(tmp_path / "big.py")]["lines"]
    assert big["2"] == 0 and big["1"] == 1  # written before f() ran
    temps = [p for p in os.listdir(tmp_path) if p.startswith(".rwtmp-")]
    assert temps, os.listdir(tmp_path)  # what the kill left: a temp file, under no final name
    combined = helpers.run([sys.executable, "-m", "racewatch", "cover", "combine"],
                           cwd=str(tmp_path))
    assert combined.returncode == 0 and "skipping" not in combined.stderr, combined.stderr
    coverage = helpers.run([sys.executable, "-m", "coverage", "combine"], cwd=str(tmp_path))
    assert coverage.returncode == 0 and "Couldn't use" not in coverage.stderr, coverage.stderr
    json.loads((tmp_path / ".racewatch-cover.json").read_text())
