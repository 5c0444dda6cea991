"""Chained lines count exactly when the line before runs and the line after does not: the
process ends or forks between them, or a signal ends it while it waits there (the raises, the
parked daemon thread and the stopped generator are in the sys.settrace oracle's corpus)."""

import os
import signal

import pytest

from tests import helpers
from tests.cover_helpers import counts_files, cover_run, line_of, summed
from tests.functional.test_cover_processes import popen, wait_for

PROGRAM = os.path.join(helpers.PROGRAMS, "cover_chains.py")


def lines(directory, *markers):
    got = summed(directory)[os.path.realpath(PROGRAM)]
    return [got.get(line_of(PROGRAM, marker), 0) for marker in markers]


@pytest.mark.parametrize("race", [True, False], ids=["race", "no-race"])
def test_os_exit_between_two_lines(tmp_path, race):
    proc = cover_run(tmp_path, *([] if race else ["--no-race"]), PROGRAM, "exit",
                     cover="--cover=atomic")
    assert proc.returncode == 0, proc.stderr
    assert lines(tmp_path, "os._exit(before - 1)", "after = 2") == [1, 0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
@pytest.mark.parametrize("race", [True, False], ids=["race", "no-race"])
def test_fork_between_two_lines(tmp_path, race):
    proc = cover_run(tmp_path, *([] if race else ["--no-race"]), PROGRAM, "fork",
                     cover="--cover=atomic")
    assert proc.returncode == 0 and "child status 0" in proc.stdout, proc.stderr
    assert len(counts_files(tmp_path)) == 2
    # the line before and the fork ran once (in the parent), the line after in both
    assert lines(tmp_path, "# before the fork", "pid = os.fork()", "# the fork line") == [1, 1, 2]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signals")
def test_sigterm_while_waiting_between_two_lines(tmp_path):
    marker = tmp_path / "parked"
    child = popen(tmp_path, "--cover=atomic", PROGRAM, "sigterm", str(marker))
    wait_for(marker.exists, "the program to park")
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGTERM
    assert lines(tmp_path, "# blocked here until SIGTERM", "after = before + 1  # never") == [1, 0]
