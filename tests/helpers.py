"""Shared helpers for tests: run programs with and without racewatch, in a controlled environment."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
PROGRAMS = os.path.join(ROOT, "tests", "programs")

# Which hot-path implementation the whole suite runs against (see tests/README.md).
RUNTIME = os.environ.get("RACEWATCH_TEST_RUNTIME", "c")


def clean_env(**extra):
    """The caller's environment without anything that changes how Python or racewatch runs,
    but PYTHON_GIL: tox's ft-nogil runs every process the tests start without the GIL."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "RACEWATCH_", "COVERAGE_")) or k == "PYTHON_GIL"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # tests that need caches remove it themselves
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def racewatch_args(*args):
    """argv for `racewatch run [runtime flags] ARGS` with this interpreter."""
    return [sys.executable, "-m", "racewatch", "run", *runtime_flags(), *args]


def runtime_flags():
    return [f"--runtime={RUNTIME}"]


def run(argv, cwd=None, env=None, timeout=300, input=None):
    return subprocess.run(argv, cwd=cwd, env=env if env is not None else clean_env(),
                          capture_output=True, text=True, timeout=timeout, input=input)


def python_args(*args):
    return [sys.executable, *args]
