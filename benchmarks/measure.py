"""Run one child process and measure it: user+sys CPU time and max RSS from os.wait4, or the
instructions it executes, counted by valgrind."""

import dataclasses
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

_I_REFS = re.compile(r"\bI\s+refs:\s+([\d,]+)")
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")
# Cachegrind without its cache simulation counts every instruction the process and its
# children execute: the same count, give or take 0.1%, however loaded the machine is.
VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
            "--cachegrind-out-file=/dev/null")


@dataclasses.dataclass
class Measurement:
    status: int | None  # exit code (negative: killed by that signal); None: timed out
    user: float
    sys: float
    maxrss_kb: int
    wall: float
    stdout: str
    stderr: str
    instructions: int | None = None  # counted by valgrind, when asked for

    @property
    def cpu(self):
        return self.user + self.sys


def measure(argv, env, cwd, timeout, count_instructions=False):
    """Run argv to completion (killed after `timeout` seconds) and measure it; with
    `count_instructions`, under valgrind (its CPU time and RSS are then valgrind's)."""
    # Files, not pipes: nothing has to drain a pipe while the child runs.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        result_path = os.path.join(scratch, "rusage")
        if count_instructions:
            argv = [*VALGRIND, f"--log-file={os.path.join(scratch, 'valgrind.%p')}", *argv]
        start = time.perf_counter()
        # Its own session, so a timeout kills the launcher and the measured process together.
        proc = subprocess.Popen([sys.executable, "-I", "-S", LAUNCHER, result_path, *argv],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.returncode is None:  # timed out, or the runner itself was interrupted
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wall = time.perf_counter() - start
        status, user, system, maxrss = _result(result_path, proc.returncode)
        instructions = _instructions(scratch) if count_instructions else None
        return Measurement(None if timed_out else status, user, system, maxrss, wall,
                           _read(out), _read(err), instructions)


def _result(path, launcher_status):
    """(exit code, user s, sys s, max RSS KB) the launcher recorded for its child."""
    try:
        with open(path) as f:
            status, user, system, maxrss = f.read().split()
    except (OSError, ValueError):  # the launcher died (killed at a timeout, or broken)
        return launcher_status or -signal.SIGKILL, 0.0, 0.0, 0
    return os.waitstatus_to_exitcode(int(status)), float(user), float(system), int(maxrss)


def _instructions(scratch):
    """The instructions of every process valgrind ran (its "I refs" lines, summed), or None."""
    total, found = 0, False
    for path in glob.glob(os.path.join(scratch, "valgrind.*")):
        with open(path, errors="replace") as f:
            for match in _I_REFS.finditer(f.read()):
                total += int(match.group(1).replace(",", ""))
                found = True
    return total if found else None


def _read(file):
    file.seek(0)
    return file.read().decode("utf-8", "replace")
