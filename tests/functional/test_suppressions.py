"""Suppressions end to end: a suppressed race is not reported, counted, or a failure."""

import os
import shutil

import pytest

from tests.helpers import FIXTURES, PROGRAMS, RUNTIME, python_args, racewatch_args, run

PROGRAM = os.path.join(PROGRAMS, "options_race.py")  # races on set_first, then set_second
DEADLOCK = os.path.join(FIXTURES, "deadlock_two_threads_opposite_order.py")


def with_suppressions(tmp_path, text, *options):
    supp = tmp_path / "race.supp"
    supp.write_text(text)
    return run(racewatch_args(f"--suppressions={supp}", *options, PROGRAM), cwd=PROGRAMS)


def test_race_top_suppresses_one_of_two(tmp_path):
    proc = with_suppressions(tmp_path, "# set_first is known\nrace_top:set_first\n")
    assert proc.returncode == 66, proc.stderr
    assert proc.stderr.count("WARNING: DATA RACE") == 1
    assert "set_second()" in proc.stderr and "set_first()" not in proc.stderr
    assert "racewatch: found 1 data race(s)" in proc.stderr


def test_everything_suppressed_is_a_clean_run(tmp_path):
    proc = with_suppressions(tmp_path, "race_top:options_race.py\n")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "after the second race" in proc.stdout


def test_race_matches_deeper_frames_race_top_does_not(tmp_path):
    # The main thread writes in main(), called from <module>: a frame below the top one.
    assert with_suppressions(tmp_path, "race_top:^<module>$\n").returncode == 66
    assert with_suppressions(tmp_path, "race:^<module>$\n").returncode == 0


def test_json_summary_counts_only_what_is_reported(tmp_path):
    proc = with_suppressions(tmp_path, "race_top:set_second\n", "--format=json")
    assert '"races": 1' in proc.stderr


def test_inline_comment(tmp_path):
    source = open(PROGRAM, encoding="utf-8").read()
    marked = source.replace("box.first = 1", "box.first = 1  # racewatch: ignore")
    assert marked != source
    (tmp_path / "options_race.py").write_text(marked)
    shutil.copy(os.path.join(PROGRAMS, "turns.py"), tmp_path)
    proc = run(racewatch_args(str(tmp_path / "options_race.py")), cwd=tmp_path)
    assert proc.returncode == 66 and proc.stderr.count("WARNING: DATA RACE") == 1
    assert "set_second()" in proc.stderr


@pytest.mark.parametrize("text", ["racy:set_first\n", "race set_first\n", "race:\n",
                                  "deadlock:\n", "mutex:M1\n"])
def test_malformed_file_is_a_one_line_error(tmp_path, text):
    proc = with_suppressions(tmp_path, "# fine so far\nthread:x\n" + text)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("racewatch: malformed suppression") and "line 3" in proc.stderr
    assert str(tmp_path / "race.supp") in proc.stderr


def test_missing_file_under_x_race(tmp_path):
    proc = run(python_args("-X", f"race=runtime={RUNTIME} suppressions={tmp_path / 'no.supp'}",
                           PROGRAM), cwd=PROGRAMS)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("racewatch: cannot read suppressions file")
    assert len(proc.stderr.splitlines()) == 1


def test_suppressions_under_x_race(tmp_path):
    supp = tmp_path / "race.supp"
    supp.write_text("race_top:set_first\nrace_top:set_second\n")
    proc = run(python_args("-X", f"race=runtime={RUNTIME} suppressions={supp}", PROGRAM),
               cwd=PROGRAMS)
    assert proc.returncode == 0 and proc.stderr == ""


def test_thread_rule_by_name_suppresses_that_threads_races(tmp_path):
    proc = with_suppressions(tmp_path, "thread:^set_first$\n")
    assert proc.returncode == 66 and proc.stderr.count("WARNING: DATA RACE") == 1
    assert "set_second()" in proc.stderr and "set_first()" not in proc.stderr


def test_thread_rule_by_creation_stack_suppresses_both(tmp_path):
    # both threads are created in section(); the main thread (the other side) is not
    assert with_suppressions(tmp_path, "thread:^section$\n").returncode == 0


def test_deadlock_rule_matches_a_frame_of_the_acquisition_stacks(tmp_path):
    supp = tmp_path / "d.supp"
    supp.write_text("deadlock:^transfer$\n")
    proc = run(racewatch_args(f"--suppressions={supp}", "--print-suppressions", DEADLOCK),
               cwd=FIXTURES)
    assert proc.returncode == 0, proc.stderr
    assert "lock-order-inversion" not in proc.stderr
    assert proc.stderr == "racewatch: suppressions used:\n      1 deadlock:^transfer$\n"
    # a race rule on the same function leaves the cycle reported
    supp.write_text("race:^transfer$\n")
    proc = run(racewatch_args(f"--suppressions={supp}", DEADLOCK), cwd=FIXTURES)
    assert proc.returncode == 66 and "lock-order-inversion (potential deadlock)" in proc.stderr


def test_print_suppressions_counts_what_fired(tmp_path):
    proc = with_suppressions(tmp_path, "race_top:set_*\nrace:never_called\n",
                             "--print-suppressions")
    assert proc.returncode == 0
    assert proc.stderr == "racewatch: suppressions used:\n      2 race_top:set_*\n"
    proc = run(racewatch_args("--print-suppressions", PROGRAM), cwd=PROGRAMS)
    assert proc.stderr.count("WARNING: DATA RACE") == 2
    assert "racewatch: no suppressions used" in proc.stderr


def test_pyproject_suppress_list_adds_to_the_file(tmp_path):
    for name in ("options_race.py", "turns.py"):
        shutil.copy(os.path.join(PROGRAMS, name), tmp_path)
    (tmp_path / "race.supp").write_text("race_top:set_first\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.racewatch]\nsuppressions = "race.supp"\nsuppress = ["race_top:set_second"]\n')
    proc = run(racewatch_args("options_race.py"), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_pyproject_malformed_suppress_entry_is_a_one_line_error(tmp_path):
    for name in ("options_race.py", "turns.py"):
        shutil.copy(os.path.join(PROGRAMS, name), tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.racewatch]\nsuppress = ["race_top:ok", "racetop:set_second"]\n')
    proc = run(racewatch_args("options_race.py"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "malformed suppression 'racetop:set_second'" in proc.stderr
    assert "[tool.racewatch]" in proc.stderr and "Traceback" not in proc.stderr


def test_inline_comment_on_an_acquisition_line_suppresses_the_cycle(tmp_path):
    source = open(DEADLOCK, encoding="utf-8").read()
    marked = source.replace("with second:  # DEADLOCK", "with second:  # racewatch: ignore")
    assert marked != source
    (tmp_path / "prog.py").write_text(marked)
    proc = run(racewatch_args(str(tmp_path / "prog.py")), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
