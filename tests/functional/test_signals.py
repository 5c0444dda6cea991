"""Signals reach the program as under python, coverage on or not: SIGTERM stops it at once
(its counts complete, its files written), a single-threaded program forks without python's
multi-threaded fork warning, and Ctrl-C while python waits for threads at exit is printed as
python prints it. Compared by events (marker files, output), never by durations."""

import os
import signal
import pytest

from tests import helpers
from tests.cover_helpers import counts_files, coverage_files, line_of, load, summed

PROGRAMS = helpers.PROGRAMS
SELF_TERM = os.path.join(PROGRAMS, "signal_term_self.py")
# racewatch with coverage: both ways of starting it, with and without race detection
COVERED = {
    "run --cover": lambda *args: (helpers.racewatch_args("--cover", *args), {}),
    "run --cover --no-race": lambda *args: (
        helpers.racewatch_args("--cover", "--no-race", *args), {}),
    "PYTHONRACE cover": lambda *args: (
        helpers.python_args(*args),
        {"PYTHONRACE": f"runtime={helpers.RUNTIME} cover=atomic"}),
}


def covered(mode, tmp_path, *args):
    argv, extra = COVERED[mode](*args)
    return helpers.run(argv, cwd=tmp_path, env=helpers.clean_env(**extra))


@pytest.mark.parametrize("mode", COVERED)
@pytest.mark.parametrize("threads", [[], ["thread"]], ids=["one thread", "two threads"])
def test_sigterm_stops_the_program_at_once(mode, threads, tmp_path):
    marker = tmp_path / "after-the-signal"
    plain = helpers.run(helpers.python_args(SELF_TERM, str(marker), "1000", *threads),
                        cwd=tmp_path)
    assert plain.returncode == -signal.SIGTERM and not marker.exists()
    proc = covered(mode, tmp_path, SELF_TERM, str(marker), "1000", *threads)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert not marker.exists(), "the program ran on after SIGTERM"
    assert (proc.stdout, proc.stderr) == (plain.stdout, plain.stderr)
    (counts,) = counts_files(tmp_path)
    data = load(counts)
    assert data["final"] is True
    if not threads:  # everything before the signal counted, nothing after it ran
        lines = summed(tmp_path)[os.path.realpath(SELF_TERM)]
        runs = 1 if data["mode"] == "set" else 1000
        assert lines[line_of(SELF_TERM, "# the counted line")] == runs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
@pytest.mark.parametrize("mode", COVERED)
def test_a_single_threaded_program_forks_without_a_warning(mode, tmp_path):
    """3.12+ warns at os.fork() when the process has more than one thread: racewatch starts
    none of its own."""
    program = os.path.join(PROGRAMS, "signal_fork.py")
    plain = helpers.run(helpers.python_args(program), cwd=tmp_path)
    proc = covered(mode, tmp_path, program)
    assert (proc.stdout, proc.stderr, proc.returncode) == (
        plain.stdout, plain.stderr, plain.returncode) == ("child 0\n", "", 0)


@pytest.mark.parametrize("mode", COVERED)
def test_ctrl_c_while_python_waits_for_threads_at_exit(mode, tmp_path):
    program = os.path.join(PROGRAMS, "same_interrupt_at_exit.py")
    plain = helpers.run(helpers.python_args(program), cwd=tmp_path)
    assert plain.returncode == 0 and "KeyboardInterrupt" in plain.stderr, plain.stderr
    proc = covered(mode, tmp_path, program)
    assert (proc.stdout, proc.stderr, proc.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)


@pytest.mark.parametrize("program", ["signal_term_mid_import.py",
                                     "signal_term_mid_package_import.py"])
def test_sigterm_in_the_middle_of_an_import_writes_both_files(tmp_path, program):
    """The write at SIGTERM needs modules (coverage.py's) the program may be importing at that
    moment: it must not see them half-initialized, nor a package without its submodules."""
    program = os.path.join(PROGRAMS, program)
    proc = covered("run --cover", tmp_path, program)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")
    assert len(counts_files(tmp_path)) == 1 and len(coverage_files(tmp_path)) == 1
