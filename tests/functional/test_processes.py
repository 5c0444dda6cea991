"""Under -X race / PYTHONRACE every process reports on its own: subprocesses, multiprocessing
children of every start method, and fork children (with a clean thread state)."""

import glob
import multiprocessing
import os

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, run


def reports(text):
    return text.count("WARNING: DATA RACE")


def race_env(options=""):
    return clean_env(PYTHONRACE=f"runtime={RUNTIME} {options}".strip())


METHODS = ["subprocess"] + [m for m in ("spawn", "forkserver", "fork")
                            if m in multiprocessing.get_all_start_methods()]


@pytest.mark.parametrize("how", METHODS)
def test_a_childs_race_is_reported_by_the_child(how):
    proc = run(python_args("activate_children.py", how), cwd=PROGRAMS, env=race_env())
    assert proc.returncode == 0, proc.stderr          # the parent itself is race-free
    assert "child status 66" in proc.stdout, proc.stderr  # the child's own exit status
    assert reports(proc.stderr) == 1, proc.stderr
    assert proc.stderr.count("racewatch: found 1 data race(s)") == 1


@pytest.mark.parametrize("how", METHODS)
def test_x_race_is_inherited_too(how):
    proc = run(python_args("-X", f"race=runtime={RUNTIME}", "activate_children.py", how),
               cwd=PROGRAMS)
    assert "child status 66" in proc.stdout, proc.stderr
    assert reports(proc.stderr) == 1


@pytest.mark.parametrize("how", METHODS)
def test_each_process_writes_its_own_log(tmp_path, how):
    proc = run(python_args("activate_children.py", how), cwd=PROGRAMS,
               env=race_env(f"log_path={tmp_path / 'race'}"))
    assert "child status 66" in proc.stdout and proc.stderr == ""
    logs = glob.glob(str(tmp_path / "race.*"))
    assert len(logs) == 1  # only the child raced, so only the child wrote
    assert not logs[0].endswith(f".{os.getpid()}")
    with open(logs[0], encoding="utf-8") as f:
        text = f.read()
    assert reports(text) == 1 and "racewatch: found 1 data race(s)" in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_fork_child_starts_clean(tmp_path):
    """The parent's threads and races are not the child's: a write the parent's worker made
    before fork does not race with the child's own write after it."""
    program = tmp_path / "forky.py"
    program.write_text(
        "import os, sys, threading\n"
        "class Box:\n    value = 0\n"
        "box = Box()\n"
        "def work():\n    box.value = 1\n"
        "t = threading.Thread(target=work)\n"
        "t.start()\n"
        "box.value = 2\n"          # a race in the parent, reported by the parent only
        "t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    box.value = 3\n"      # ordered after everything the parent did before fork
        "    sys.exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('child', os.waitstatus_to_exitcode(status))\n")
    (tmp_path / "pyproject.toml").write_text("")
    proc = run(python_args(str(program)), cwd=tmp_path, env=race_env())
    assert proc.stdout == "child 0\n", proc.stderr
    assert proc.returncode == 66 and reports(proc.stderr) == 1
    assert proc.stderr.count("racewatch: found 1 data race(s)") == 1
