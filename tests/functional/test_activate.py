"""`python -X race` and PYTHONRACE: startup activation through the installed .pth file."""

import os
import shutil
import signal
import sys

import pytest

from tests.helpers import PROGRAMS, ROOT, RUNTIME, clean_env, python_args, run

RACE = "activate_race.py"
SAME_AS_PYTHON = ["run_argv.py", "run_exit3.py", "run_exit_message.py", "run_raises.py",
                  "run_interrupt.py", "activate_clean.py"]


def xrace(*args, options=""):
    """argv for `python -X race[=runtime=... OPTIONS] ARGS`."""
    return python_args("-X", f"race=runtime={RUNTIME} {options}".strip(), *args)


def env_race(options=""):
    return clean_env(PYTHONRACE=f"runtime={RUNTIME} {options}".strip())


def reports(text):
    return text.count("WARNING: DATA RACE")


def test_x_race_reports_and_exits_66():
    proc = run(xrace(RACE), cwd=PROGRAMS)
    assert proc.returncode == 66, proc.stderr
    assert reports(proc.stderr) == 1
    assert "racewatch: found 1 data race(s)" in proc.stderr
    assert "  set_value()" in proc.stderr and "  main()" in proc.stderr  # both stacks
    assert proc.stdout.endswith("done\n")


def test_pythonrace_reports_and_exits_66():
    proc = run(python_args(RACE), cwd=PROGRAMS, env=env_race())
    assert proc.returncode == 66, proc.stderr
    assert reports(proc.stderr) == 1


def test_pythonrace_one_means_on_with_defaults():
    proc = run(python_args(RACE), cwd=PROGRAMS, env=clean_env(PYTHONRACE="1"))
    assert proc.returncode == 66 and reports(proc.stderr) == 1


@pytest.mark.parametrize("value", ["", "0", "off", " False "])
def test_pythonrace_off_values(value):
    proc = run(python_args("activate_probe.py"), cwd=PROGRAMS, env=clean_env(PYTHONRACE=value))
    assert proc.stdout == "racewatch not loaded\n" and proc.returncode == 0


@pytest.mark.parametrize("args, status", [(("exit", "5"), 5), (("raise",), 1)])
def test_program_failure_keeps_its_own_status(args, status):
    proc = run(xrace(RACE, *args), cwd=PROGRAMS)
    assert proc.returncode == status, proc.stderr
    assert reports(proc.stderr) == 1


def test_exitcode_option():
    assert run(xrace(RACE, options="exitcode=3"), cwd=PROGRAMS).returncode == 3


@pytest.mark.parametrize("program", SAME_AS_PYTHON)
@pytest.mark.parametrize("mode", ["x", "env"])
def test_clean_program_runs_as_under_python(program, mode):
    plain = run(python_args(program, "one", "--two"), cwd=PROGRAMS)
    if mode == "x":
        watched = run(xrace(program, "one", "--two"), cwd=PROGRAMS)
    else:
        watched = run(python_args(program, "one", "--two"), cwd=PROGRAMS, env=env_race())
    assert (watched.stdout, watched.stderr, watched.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)
    if program == "run_interrupt.py":
        assert watched.returncode == -signal.SIGINT


@pytest.mark.parametrize("flags", [["-P"], ["-I"], ["-s", "-B"]])
def test_interpreter_flags_keep_their_meaning(flags):
    plain = run(python_args(*flags, "run_argv.py", "a"), cwd=PROGRAMS)
    watched = run(python_args(*flags, "-X", f"race=runtime={RUNTIME}", "run_argv.py", "a"),
                  cwd=PROGRAMS)
    assert watched.stdout == plain.stdout and watched.returncode == plain.returncode


def test_dash_m_runs_as_under_python():
    plain = run(python_args("-m", "runpkg", "a", "b"), cwd=PROGRAMS)
    watched = run(xrace("-m", "runpkg", "a", "b"), cwd=PROGRAMS)
    assert (watched.stdout, watched.stderr, watched.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)


def test_main_is_instrumented_as_a_script_and_with_dash_m(tmp_path):
    assert run(xrace("activate_probe.py"), cwd=PROGRAMS).stdout == "instrumented True True\n"
    (tmp_path / "probepkg").mkdir()
    shutil.copy(os.path.join(PROGRAMS, "activate_probe.py"), tmp_path / "probepkg" / "__main__.py")
    (tmp_path / "probepkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    proc = run(xrace("-m", "probepkg"), cwd=tmp_path)
    assert proc.stdout == "instrumented True True\n", proc.stderr


def test_dash_m_race_in_a_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "racepkg").mkdir()
    (tmp_path / "racepkg" / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(os.path.join(PROGRAMS, RACE), tmp_path / "racepkg" / "__main__.py")
    proc = run(xrace("-m", "racepkg"), cwd=tmp_path)
    assert proc.returncode == 66 and reports(proc.stderr) == 1, proc.stderr


def test_dash_c_imports_are_instrumented_and_the_status_changes():
    code = "import sys; sys.path.insert(0, '.'); import activate_race; activate_race.main([])"
    proc = run(xrace("-c", code), cwd=PROGRAMS)
    assert proc.returncode == 66 and reports(proc.stderr) == 1, proc.stderr
    assert "racewatch: found 1 data race(s)" in proc.stderr


def test_dash_c_keeps_a_nonzero_exit():
    code = ("import sys; sys.path.insert(0, '.'); import activate_race; "
            "activate_race.main(['exit', '7'])")
    proc = run(xrace("-c", code), cwd=PROGRAMS)
    assert proc.returncode == 7 and reports(proc.stderr) == 1


def test_off_imports_nothing_of_racewatch():
    code = ("import sys; print(sorted(m for m in sys.modules "
            "if m == 'racewatch' or m.startswith('racewatch.')))")
    assert run(python_args("-c", code)).stdout == "[]\n"
    assert run(python_args("-c", code), env=clean_env(PYTHONRACE="0")).stdout == "[]\n"


def test_pythonrace_is_ignored_under_dash_e():
    proc = run(python_args("-E", RACE), cwd=PROGRAMS, env=env_race())
    assert proc.returncode == 0 and reports(proc.stderr) == 0


def test_the_pth_line_runs_twice_harmlessly():
    """site may process a site-packages directory twice: the second run changes nothing."""
    code = ("import sys, site\n"
            "from racewatch.rewriter.hook import ImportHook\n"
            "line = open(sys.argv[1]).read()\n"
            "exec(line)\n"
            "print(sum(isinstance(f, ImportHook) for f in sys.meta_path))\n")
    pth = os.path.join(ROOT, "src", "a0_racewatch.pth")
    assert run(xrace("-c", code, pth)).stdout == "1\n"


def test_the_installed_pth_is_the_projects():
    """The .pth file site runs in this environment is src/a0_racewatch.pth."""
    import site
    with open(os.path.join(ROOT, "src", "a0_racewatch.pth"), encoding="utf-8") as f:
        ours = f.read()
    installed = [os.path.join(d, "a0_racewatch.pth") for d in site.getsitepackages()
                 if os.path.exists(os.path.join(d, "a0_racewatch.pth"))]
    assert installed, "a0_racewatch.pth is not installed in this environment"
    for path in installed:
        with open(path, encoding="utf-8") as f:
            assert f.read() == ours
    assert len(ours.strip().splitlines()) == 1 and ours.startswith("import ")


@pytest.mark.parametrize("options, message", [
    ("exitcode=abc", "racewatch: bad value 'abc' for option 'exitcode' (-X race)"),
    ("nonsense=1", "racewatch: unknown option 'nonsense' (-X race)"),
    ("history", "racewatch: malformed option 'history' (-X race)"),
])
def test_malformed_x_race_is_a_one_line_error(options, message):
    proc = run(xrace(RACE, options=options), cwd=PROGRAMS)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message), proc.stderr


def test_malformed_pythonrace_is_a_one_line_error():
    proc = run(python_args(RACE), cwd=PROGRAMS, env=clean_env(PYTHONRACE="exitcode=x"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("racewatch: bad value 'x' for option 'exitcode' (PYTHONRACE): "
                           "expected an exit status from 1 to 255\n")


def racy_project(tmp_path, pyproject):
    """tmp_path/proj with that pyproject.toml and the racy program as app.py."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject)
    shutil.copy(os.path.join(PROGRAMS, RACE), project / "app.py")
    return project


def test_pyproject_options_then_environment(tmp_path):
    project = racy_project(tmp_path, "[tool.racewatch]\nexitcode = 9\nformat = 'json'\n")
    proc = run(python_args("app.py"), cwd=project, env=env_race())
    assert proc.returncode == 9 and '"type": "race"' in proc.stderr
    proc = run(python_args("app.py"), cwd=project, env=env_race("exitcode=4"))
    assert proc.returncode == 4


def test_pyproject_is_found_from_the_script(tmp_path):
    project = racy_project(tmp_path, "[tool.racewatch]\nexitcode = 9\n")
    assert run(xrace(str(project / "app.py")), cwd=tmp_path).returncode == 9


def test_bad_pyproject_is_a_one_line_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.racewatch]\nbogus = true\n")
    (tmp_path / "app.py").write_text("print('never')\n")
    proc = run(xrace("app.py"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("racewatch: unknown option 'bogus' (")
    assert len(proc.stderr.splitlines()) == 1


def test_halt_on_error_from_startup():
    proc = run(xrace(RACE, options="halt_on_error=1"), cwd=PROGRAMS)
    assert proc.returncode == 66 and reports(proc.stderr) == 1
    assert "done" not in proc.stdout


def test_log_path_per_process(tmp_path):
    proc = run(xrace(RACE, options=f"log_path={tmp_path / 'race'}"), cwd=PROGRAMS)
    pid = proc.stdout.split()[1]
    assert proc.returncode == 66 and proc.stderr == ""
    assert os.listdir(tmp_path) == [f"race.{pid}"]
    assert reports((tmp_path / f"race.{pid}").read_text()) == 1


def test_racewatch_run_under_pythonrace_is_one_session():
    """`racewatch run` starts its own session; the .pth leaves it alone (no double reports)."""
    proc = run([sys.executable, "-m", "racewatch", "run", RACE], cwd=PROGRAMS,
               env=env_race("exitcode=5"))
    assert proc.returncode == 5 and reports(proc.stderr) == 1, proc.stderr
