"""--include reaches any module, the standard library and what racewatch imports itself too."""

import json
import os

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, racewatch_args, run

# Modules racewatch's rewriting pass imports (through `bytecode`) or that every process has
# imported before racewatch starts: instrumenting them must not re-enter the pass half-imported.
MODULES = ["copy", "dataclasses", "typing", "dis", "inspect", "collections", "functools",
           "contextlib", "json"]


@pytest.mark.parametrize("pattern", ["{module}", "*"])
@pytest.mark.parametrize("module", MODULES)
def test_include_of_a_module_the_rewriter_imports(module, pattern, tmp_path):
    side = tmp_path / "counts.json"
    args = ["include_fresh.py", module, str(side)]
    plain = run(python_args(*args), cwd=PROGRAMS)
    watched = run(racewatch_args(f"--include={pattern.format(module=module)}", *args),
                  cwd=PROGRAMS)
    assert watched.returncode == plain.returncode == 0, watched.stderr
    assert watched.stdout == plain.stdout
    assert "Traceback" not in watched.stderr
    report = json.loads(side.read_text())
    assert report["instrumented"] > 0 and report["missed"] == [], report


def test_pythonrace_include_star_starts_every_process(tmp_path):
    """PYTHONRACE reaches every process: each must start, instrumenting what it imports."""
    side = tmp_path / "counts.json"
    code = ("import subprocess, sys; subprocess.run([sys.executable, 'include_fresh.py', "
            f"'json', {str(side)!r}], check=True)")
    proc = run(python_args("-c", code), cwd=PROGRAMS,
               env=clean_env(PYTHONRACE=f"runtime={RUNTIME} include=*"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("json ['JSONDecodeError',")
    report = json.loads(side.read_text())
    assert report["instrumented"] > 0 and report["missed"] == [], report


def test_include_star_torture_program_behaves(tmp_path):
    """The standard library the torture program imports, instrumented too: same output,
    tracebacks and status as under python."""
    args = ["torture.py", f"--instrumented={tmp_path / 'side.json'}"]
    env = clean_env(PYTHONHASHSEED="0")
    plain = run(python_args(*args), cwd=PROGRAMS, env=env)
    watched = run(racewatch_args("--include=*", *args), cwd=PROGRAMS, env=env)
    assert plain.returncode == 1 and "Traceback" in plain.stderr
    # racewatch's one warning names what was imported before it started, and is no output
    # of the program's
    stderr = "".join(line for line in watched.stderr.splitlines(keepends=True)
                     if not line.startswith("racewatch: warning: "))
    assert (watched.stdout, stderr, watched.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_instrumented_threading_forks_without_races(tmp_path):
    """A fork child's at-fork hooks run before racewatch has reset its state there: probes
    in them (threading's, instrumented) must not meet the parent's threads' history."""
    proc = run(racewatch_args("--include=threading", "fork_after_threads.py"), cwd=PROGRAMS)
    assert (proc.stdout, proc.returncode) == ("instrumented: True\nchild 5\n", 0), proc.stderr
    assert "DATA RACE" not in proc.stderr
