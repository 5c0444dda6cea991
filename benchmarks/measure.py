"""Run one child process and measure it: user+sys CPU time and max RSS from os.wait4."""

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")


@dataclasses.dataclass
class Measurement:
    status: int | None  # exit code (negative: killed by that signal); None: timed out
    user: float
    sys: float
    maxrss_kb: int
    wall: float
    stdout: str
    stderr: str

    @property
    def cpu(self):
        return self.user + self.sys


def measure(argv, env, cwd, timeout):
    """Run argv to completion (killed after `timeout` seconds) and measure it."""
    # Files, not pipes: nothing has to drain a pipe while the child runs.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        result_path = os.path.join(scratch, "rusage")
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
        return Measurement(None if timed_out else status, user, system, maxrss, wall,
                           _read(out), _read(err))


def _result(path, launcher_status):
    """(exit code, user s, sys s, max RSS KB) the launcher recorded for its child."""
    try:
        with open(path) as f:
            status, user, system, maxrss = f.read().split()
    except (OSError, ValueError):  # the launcher died (killed at a timeout, or broken)
        return launcher_status or -signal.SIGKILL, 0.0, 0.0, 0
    return os.waitstatus_to_exitcode(int(status)), float(user), float(system), int(maxrss)


def _read(file):
    file.seek(0)
    return file.read().decode("utf-8", "replace")
