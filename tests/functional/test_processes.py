"""Under racewatch run, -X race and PYTHONRACE every process reports on its own (subprocesses,
multiprocessing children of every start method, fork children with a clean thread state) and
keeps its own exit status; the run's top process sums them up and exits 66."""

import glob
import json
import multiprocessing
import os
import re

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, racewatch_args, run


def reports(text):
    return text.count("WARNING: DATA RACE")


def race_env(options=""):
    return clean_env(PYTHONRACE=f"runtime={RUNTIME} {options}".strip())


METHODS = ["subprocess"] + [m for m in ("spawn", "forkserver", "fork")
                            if m in multiprocessing.get_all_start_methods()]


def parent_pid(proc):
    return int(re.match(r"parent pid (\d+)\n", proc.stdout).group(1))


def descendant_lines(text):
    """The top process's summary lines naming the processes started under it."""
    return re.findall(r"^  pid (\d+): (\d+) data race\(s\) in (.*)$", text, re.M)


# How the run starts: its top process is the first racewatch process.
TOPS = {
    "PYTHONRACE": lambda *args: run(python_args(*args), cwd=PROGRAMS, env=race_env()),
    "-X race": lambda *args: run(python_args("-X", f"race=runtime={RUNTIME}", *args),
                                 cwd=PROGRAMS),
    "racewatch run": lambda *args: run(racewatch_args(*args), cwd=PROGRAMS),
}


@pytest.mark.parametrize("top", TOPS)
@pytest.mark.parametrize("how", METHODS)
def test_a_child_keeps_its_status_and_the_run_exits_66(how, top):
    """A child that raced exits as under python (a parent's check_call or Process.exitcode
    sees no difference); the run's top process exits 66 and names it."""
    proc = TOPS[top]("activate_children.py", how)
    assert proc.stdout.endswith("child status 0\n"), proc.stderr
    assert reports(proc.stderr) == 1, proc.stderr  # the child's own report
    assert proc.returncode == 66, proc.stderr       # the parent itself is race-free
    (pid, races, argv), = descendant_lines(proc.stderr)
    assert int(pid) != parent_pid(proc) and races == "1", proc.stderr
    expected = "activate_race.py" if how == "subprocess" else "activate_children.py " + how
    assert argv.endswith(expected)


def test_a_child_ended_by_os_exit_is_counted():
    proc = TOPS["racewatch run"]("activate_children.py", "subprocess-_exit")
    assert proc.stdout.endswith("child status 0\n") and proc.returncode == 66, proc.stderr
    assert len(descendant_lines(proc.stderr)) == 1


@pytest.mark.parametrize("how", ["subprocess", METHODS[-1]])
def test_children_racing_at_once_are_each_named(how):
    proc = TOPS["racewatch run"]("activate_children.py", how, "4")
    assert proc.stdout.count("child status 0\n") == 4, proc.stderr
    assert proc.returncode == 66
    pids = [pid for pid, _, _ in descendant_lines(proc.stderr)]
    assert len(set(pids)) == 4, proc.stderr


def test_a_child_that_is_itself_a_racewatch_run_keeps_its_status():
    code = ("import subprocess, sys; print('child status', subprocess.call([sys.executable, "
            "'-m', 'racewatch', 'run', 'activate_race.py']))")
    proc = run(python_args("-c", code), cwd=PROGRAMS, env=race_env())
    assert proc.stdout.endswith("child status 0\n") and proc.returncode == 66, proc.stderr


def test_the_json_summary_names_the_descendants(tmp_path):
    proc = run(racewatch_args("--format=json", f"--log-path={tmp_path / 'race'}",
                              "activate_children.py", "subprocess"), cwd=PROGRAMS)
    assert proc.returncode == 66, proc.stderr
    with open(tmp_path / f"race.{parent_pid(proc)}", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    summaries = [r for r in records if r["type"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["races"] == 0
    (child,) = summaries[0]["descendants"]
    assert child["races"] == 1 and child["argv"][0].endswith("activate_race.py")


@pytest.mark.parametrize("how", METHODS)
def test_each_process_writes_its_own_log(tmp_path, how):
    proc = run(python_args("activate_children.py", how), cwd=PROGRAMS,
               env=race_env(f"log_path={tmp_path / 'race'}"))
    assert "child status 0" in proc.stdout and proc.stderr == ""
    logs = {int(path.rpartition(".")[2]): open(path, encoding="utf-8").read()
            for path in glob.glob(str(tmp_path / "race.*"))}
    assert len(logs) == 2  # the child's reports, and the summary of the run's top process
    top = logs.pop(parent_pid(proc))
    (child_pid, text), = logs.items()
    assert reports(text) == 1 and "racewatch: found 1 data race(s)" in text
    assert reports(top) == 0 and descendant_lines(top)[0][0] == str(child_pid)


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
