"""Measure every variant of one workload on one Python: warm up, then repeat round-robin."""

import atexit
import dataclasses
import os
import shutil
import tempfile
from typing import NamedTuple

import measure
import variants

# Warm-ups only fill caches (racewatch's rewritten code, site-packages .pyc files), and what
# they fill does not depend on the workload's size, so they run small.
WARMUP_SCALE = 0.01
OK, FAILED, MISMATCH = "ok", "failed", "mismatch"


class Settings(NamedTuple):
    repeat: int
    repeat_slow: int
    scale: float
    timeout: float
    count_instructions: bool = False

    def repeats(self, variant):
        return self.repeat_slow if variant.slow else self.repeat


@dataclasses.dataclass
class Run:
    python: str  # version label of the interpreter
    workload: str
    variant: str
    warmup: bool
    measurement: measure.Measurement
    checksum: str | None  # the workload's checksum line
    verdict: str = OK
    detail: str = ""

    def to_json(self):
        data = dataclasses.asdict(self)
        data.update(data.pop("measurement"))
        data["cpu"] = self.measurement.cpu
        return data


def child_env(variant):
    """The caller's environment without what changes how Python or racewatch runs."""
    # Dropping PYTHONDONTWRITEBYTECODE matters: with it, racewatch's code cache never warms.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "RACEWATCH_", "COVERAGE_"))}
    env["PYTHONHASHSEED"] = "0"  # the same dict and set layouts in every run
    # Coverage variants write their data files where coverage.py's data file would go.
    env["COVERAGE_FILE"] = os.path.join(scratch_dir(), ".coverage")
    env.update(variant.env)
    return env


_scratch = []


def scratch_dir():
    """A directory for what runs write (coverage data), removed when the runner exits."""
    if not _scratch:
        _scratch.append(tempfile.mkdtemp(prefix="racewatch-bench-"))
        atexit.register(shutil.rmtree, _scratch[0], True)
    return _scratch[0]


def checksum_of(stdout):
    for line in stdout.splitlines():
        if line.startswith("checksum"):
            return line.strip()
    return None


def measure_workload(python, label, script, chosen, settings, on_problem):
    """All runs of one workload on one Python, warm-ups first; `on_problem(run)` as they fail."""
    runs = []
    expected = {}  # warmup flag -> the baseline's checksum at that size

    def one(variant, warmup):
        scale = min(settings.scale, WARMUP_SCALE) if warmup else settings.scale
        argv = variants.command(variant, python, script, scale)
        counted = settings.count_instructions and not warmup  # warm-ups only fill caches
        result = measure.measure(argv, child_env(variant), os.path.dirname(script),
                                 settings.timeout, counted)
        run = Run(label, os.path.basename(script)[:-3], variant.name, warmup, result,
                  checksum_of(result.stdout))
        _judge(run, expected.get(warmup), settings.timeout)
        if run.verdict == OK and counted and result.instructions is None:
            run.verdict, run.detail = FAILED, "valgrind reported no instruction count"
        if run.verdict == OK and variant is variants.BASELINE:
            expected.setdefault(warmup, run.checksum)
        elif run.verdict != OK:
            on_problem(run)
        runs.append(run)
        return run

    # A variant whose warm-up failed would only fail again, maybe after a long timeout.
    healthy = [v for v in chosen if one(v, warmup=True).verdict == OK]
    for round_ in range(max(map(settings.repeats, chosen))):
        for variant in healthy:
            if round_ < settings.repeats(variant):
                one(variant, warmup=False)
    return runs


def _judge(run, expected, timeout):
    status = run.measurement.status
    if status is None:
        run.verdict, run.detail = FAILED, f"timed out after {timeout:g} s"
    elif status != 0:
        run.verdict, run.detail = FAILED, f"exit status {status}"
    elif run.checksum is None:
        run.verdict, run.detail = FAILED, "printed no checksum line"
    elif expected is not None and run.checksum != expected:
        run.verdict = MISMATCH
        run.detail = f"checksum {run.checksum!r}, but plain printed {expected!r}"
