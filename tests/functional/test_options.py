"""The GORACE-style options on a racy program: halting, exit status, log files, paths, formats."""

import json
import os

import pytest

from tests.helpers import FIXTURES, PROGRAMS, racewatch_args, run

PROGRAM = os.path.join(PROGRAMS, "options_race.py")


def race_program(*options, args=()):
    return run(racewatch_args(*options, PROGRAM, *args), cwd=PROGRAMS)


def reports(text):
    return text.count("WARNING: DATA RACE")


def json_records(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_default_reports_both_races_and_exits_66():
    proc = race_program()
    assert proc.returncode == 66, proc.stderr
    assert reports(proc.stderr) == 2
    assert "after the second race" in proc.stdout
    assert "racewatch: found 2 data race(s)" in proc.stderr


def test_halt_on_error_stops_at_the_first_report():
    proc = race_program("--halt-on-error")
    assert proc.returncode == 66, proc.stderr
    assert reports(proc.stderr) == 1
    assert proc.stdout.startswith("pid ")
    assert "after the first race" not in proc.stdout  # stopped inside the first race
    assert "racewatch: found 1 data race(s)" in proc.stderr


def test_halt_on_error_uses_exitcode():
    assert race_program("--halt-on-error", "--exitcode=3").returncode == 3


def test_exitcode():
    proc = race_program("--exitcode=3")
    assert proc.returncode == 3, proc.stderr
    assert reports(proc.stderr) == 2


@pytest.mark.parametrize("args, status", [(("exit", "5"), 5), (("raise",), 1)])
def test_program_failure_keeps_its_own_status(args, status):
    proc = race_program(args=args)
    assert proc.returncode == status, proc.stderr
    assert reports(proc.stderr) == 2  # the races are still reported


def test_log_path_writes_one_file_per_process(tmp_path):
    proc = race_program(f"--log-path={tmp_path / 'race'}")
    assert proc.returncode == 66
    pid = proc.stdout.split()[1]
    assert os.listdir(tmp_path) == [f"race.{pid}"]
    text = (tmp_path / f"race.{pid}").read_text()
    assert reports(text) == 2 and "racewatch: found 2 data race(s)" in text
    assert "DATA RACE" not in proc.stderr and "racewatch" not in proc.stderr


def test_paths_are_relative_to_the_project_root_by_default(tmp_path):
    plain = race_program()  # cwd tests/programs: the project is racewatch's checkout
    assert f"{PROGRAMS}{os.sep}" not in plain.stderr
    assert f"  tests{os.sep}programs{os.sep}options_race.py:" in plain.stderr
    outside = run(racewatch_args(PROGRAM), cwd=tmp_path)  # a directory of no project
    assert f"  {PROGRAMS}{os.sep}options_race.py:" in outside.stderr


def test_strip_path_prefix():
    absolute = race_program("--strip-path-prefix=")
    assert f"{PROGRAMS}{os.sep}options_race.py:" in absolute.stderr
    stripped = race_program(f"--strip-path-prefix={PROGRAMS}{os.sep}")
    assert PROGRAMS not in stripped.stderr
    assert "  set_first()      options_race.py:" in stripped.stderr
    assert "  options_race.py:" in stripped.stderr  # the summary's sites too


def test_json_format_lines_parse():
    proc = race_program("--format=json")
    records = json_records(proc.stderr)
    assert [r["type"] for r in records] == ["header", "race", "race", "summary"]
    assert records[0]["schema"] == "racewatch-report" and records[0]["version"] == 1
    race = records[1]
    assert race["location"].startswith("attribute 'first' of Box object at 0x")
    assert race["access"]["thread"] == "main thread"
    assert race["previous"]["stack"][0]["function"] == "set_first"
    assert records[-1]["races"] == 2


@pytest.mark.parametrize("history, depth", [("site", 1), ("full", 2)])
def test_history_full_gives_the_previous_access_its_stack(history, depth):
    proc = race_program("--format=json", f"--history={history}")
    previous = [r["previous"]["stack"] for r in json_records(proc.stderr) if r["type"] == "race"]
    assert len(previous) == 2
    for stack in previous:
        assert stack[0]["function"] in ("set_first", "set_second")
        if history == "site":
            assert len(stack) == 1
        else:  # the worker's function, then the threading frames that called it
            assert len(stack) > depth and stack[1]["function"] == "Thread.run"


@pytest.mark.parametrize("option", ["--exitcode=abc", "--history=bogus", "--nonsense",
                                    "--format=xml", "--halt-on-error=maybe"])
def test_malformed_option_is_a_one_line_error(option):
    proc = race_program(option)
    assert proc.returncode == 2
    assert proc.stdout == ""  # the program never ran
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("racewatch: "), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["norace_address_reuse.py", "norace_executor_wait.py",
                                  "norace_dict_merge_executor_results.py"])
def test_clean_run_writes_nothing_to_stderr(name):
    """Nothing from racewatch at exit either (the twin once printed weakref callback errors
    from interpreter shutdown under 3.11 after executor programs)."""
    proc = run(racewatch_args(os.path.join(FIXTURES, name)), cwd=FIXTURES)
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_include_of_a_module_imported_before_racewatch_says_so_once(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import enum, functools, weakref, threading, json\nprint('ran')\n")
    proc = run(racewatch_args("--include=enum,functools,weakref,threading,json", str(script)),
               cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    assert proc.stderr == ("racewatch: warning: enum, functools, threading, weakref were "
                           "imported before racewatch started, so they are not instrumented\n")


def test_a_selected_package_without_sources_is_named_once(tmp_path):
    import py_compile
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "__init__.py").write_text("")
    for name in ("one", "two"):
        source = tmp_path / "legacy" / f"{name}.py"
        source.write_text("VALUE = 1\n")
        py_compile.compile(str(source), cfile=str(tmp_path / "legacy" / f"{name}.pyc"))
        source.unlink()
    (tmp_path / "app.py").write_text("import legacy.one, legacy.two\nprint('ran')\n")
    proc = run(racewatch_args("app.py"), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    assert proc.stderr == (f"racewatch: warning: legacy has no source files ({tmp_path}/legacy/"
                           "one.pyc is a .pyc alone), so it is not instrumented\n")
