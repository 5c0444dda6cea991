"""`racewatch run` runs programs exactly as `python` does: output, tracebacks, exit status."""

import os
import signal

import pytest

from tests.helpers import FIXTURES, PROGRAMS, python_args, racewatch_args, run

SAME_AS_PYTHON = ["run_argv.py", "run_exit3.py", "run_exit_message.py", "run_raises.py",
                  "run_interrupt.py"]


def both(*args, cwd=PROGRAMS):
    return run(python_args(*args), cwd=cwd), run(racewatch_args(*args), cwd=cwd)


@pytest.mark.parametrize("program", SAME_AS_PYTHON)
def test_program_runs_as_under_python(program):
    plain, watched = both(program, "one", "--two")
    assert watched.stdout == plain.stdout
    assert watched.stderr == plain.stderr
    assert watched.returncode == plain.returncode


def test_exit_statuses_are_the_programs_own():
    assert both("run_exit3.py")[1].returncode == 3
    assert both("run_exit_message.py")[1].returncode == 1
    assert both("run_raises.py")[1].returncode == 1
    assert both("run_interrupt.py")[1].returncode == -signal.SIGINT


def test_traceback_has_no_racewatch_frames():
    watched = both("run_raises.py")[1]
    assert 'File "' in watched.stderr and "racewatch" not in watched.stderr
    assert "^^^^" in watched.stderr or "^" in watched.stderr  # carets of the failing access


@pytest.mark.parametrize("fixture", ["norace_lock_acquire_release.py", "norace_queue_handoff.py"])
def test_clean_fixture_output_unchanged(fixture):
    plain, watched = both(os.path.join(FIXTURES, fixture), cwd=FIXTURES)
    assert (watched.stdout, watched.stderr, watched.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)


def test_module_run_as_under_python():
    plain, watched = both("-m", "runpkg", "a", "b")
    assert (watched.stdout, watched.returncode) == (plain.stdout, plain.returncode)
    assert plain.stdout.startswith("['a', 'b'] __main__ runpkg runpkg.__main__ True")


def test_main_module_is_instrumented(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import sys\n"
                      "from racewatch.rewriter.instrument import is_instrumented\n"
                      "def f(o):\n    return o.x\n"
                      "print(is_instrumented(f.__code__), is_instrumented(sys._getframe().f_code))\n")
    assert run(racewatch_args(str(script))).stdout == "True True\n"


def test_missing_script():
    watched = run(racewatch_args("no_such_file.py"), cwd=PROGRAMS)
    assert watched.returncode == 2
    assert watched.stderr.count("\n") == 1
    assert "can't open file" in watched.stderr and "No such file or directory" in watched.stderr


def test_missing_module():
    plain, watched = both("-m", "no_such_module")
    assert watched.returncode == plain.returncode == 1
    assert watched.stderr.rstrip().endswith("No module named no_such_module")


def test_syntax_error_is_pythons_message(tmp_path):
    (tmp_path / "bad.py").write_text("x = (\n")
    plain, watched = both("bad.py", cwd=tmp_path)
    assert watched.returncode == plain.returncode == 1
    assert watched.stderr == plain.stderr
    assert "SyntaxError" in watched.stderr


@pytest.mark.parametrize("args, message", [
    (["--bogus", "x.py"], "unknown option '--bogus'"),
    (["--exitcode=abc", "x.py"],
     "bad value 'abc' for option 'exitcode' (command line): expected an exit status from 1 "
     "to 255"),
    (["-x", "x.py"], "unknown option '-x'"),
    ([], "run needs a script or -m MODULE"),
])
def test_bad_command_line_is_one_line(args, message):
    watched = run(racewatch_args(*args), cwd=PROGRAMS)
    assert watched.returncode == 2
    assert watched.stderr == f"racewatch: {message}\n"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_run_help_prints_the_usage(flag):
    watched = run(racewatch_args(flag), cwd=PROGRAMS)
    assert watched.returncode == 0 and watched.stderr == ""
    assert watched.stdout.startswith("usage: racewatch run [OPTIONS] SCRIPT")
    assert "--include=PATTERNS" in watched.stdout


def test_summary_names_accesses_in_plain_words(tmp_path):
    script = tmp_path / "kinds.py"
    script.write_text(
        "import threading\n"
        "shared = []\n"
        "def add():\n"
        "    shared.append(1)\n"
        "def look():\n"
        "    len(shared)\n"
        "    for _ in shared:\n"
        "        pass\n"
        "    shared.sort()\n"
        "workers = [threading.Thread(target=f) for f in (add, look)]\n"
        "for w in workers:\n"
        "    w.start()\n"
        "for w in workers:\n"
        "    w.join()\n")
    proc = run(racewatch_args(str(script)), cwd=tmp_path)
    summary = proc.stderr[proc.stderr.index("racewatch: found"):].splitlines()[1:]
    assert summary == [
        "  kinds.py:4 (atomic write by .append()) vs kinds.py:6 (builtin call (len, getattr...)) "
        "(1 time)",
        "  kinds.py:4 (atomic write by .append()) vs kinds.py:7 (iteration) (1 time)",
        "  kinds.py:4 (atomic write by .append()) vs kinds.py:9 (write by .sort()) (1 time)"]
