"""racewatch.start() / stop() / races() from Python code, and an import without side effects."""

import json
import textwrap

from tests.helpers import RUNTIME, clean_env, python_args, run

LIB = """
import threading


class Box:
    def __init__(self):
        self.value = 0


def race():
    box = Box()

    def work():
        box.value = 1

    worker = threading.Thread(target=work)
    worker.start()
    box.value = 2
    worker.join()
"""


def program(tmp_path, body):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "lib.py").write_text(LIB)
    (tmp_path / "main.py").write_text(textwrap.dedent(body))
    return run(python_args("main.py"), cwd=tmp_path)


def test_import_has_no_side_effects():
    code = ("import builtins, sys\n"
            "hooks, names = list(sys.meta_path), set(vars(builtins))\n"
            "import racewatch\n"
            "print(sys.meta_path == hooks, set(vars(builtins)) == names, sorted(\n"
            "    m for m in sys.modules if m.startswith('racewatch.')))\n")
    assert run(python_args("-c", code)).stdout == (
        "True True ['racewatch.annotations', 'racewatch.control', 'racewatch.pristine']\n")


def test_start_stop_races(tmp_path):
    proc = program(tmp_path, f"""
        import json
        import racewatch

        with racewatch.start(runtime="{RUNTIME}", log_path="stdout", exitcode=3) as detector:
            import lib
            lib.race()
        found = racewatch.races()
        print(json.dumps([len(found), found[0]["location"].split(" at ")[0],
                          found[0]["access"]["stack"][0]["function"],
                          found[0]["previous"]["stack"][0]["function"],
                          detector.races() == found]))
        lib.race()  # stopped: the probes still run, and record nothing
        print(len(racewatch.races()))
    """)
    assert proc.returncode == 0, proc.stderr  # the program owns its exit status
    lines = proc.stdout.splitlines()
    assert json.loads(lines[-2]) == [1, "attribute 'value' of Box object", "race",
                                     "race.<locals>.work", True]
    assert lines[-1] == "1"
    assert proc.stdout.count("WARNING: DATA RACE") == 1


def test_start_again_resumes(tmp_path):
    proc = program(tmp_path, f"""
        import racewatch

        racewatch.start(runtime="{RUNTIME}")
        import lib
        racewatch.stop()
        lib.race()
        print(len(racewatch.races()))
        racewatch.start()
        lib.race()
        print(len(racewatch.races()))
    """)
    assert proc.stdout.splitlines() == ["0", "1"], proc.stderr
    assert proc.stderr.count("WARNING: DATA RACE") == 1


def test_bad_option_is_a_config_error(tmp_path):
    proc = program(tmp_path, """
        import racewatch
        from racewatch.config import ConfigError
        for bad in ({"exitcode": "x"}, {"nonsense": 1}, {"halt_on_error": 2}):
            try:
                racewatch.start(**bad)
            except ConfigError as exc:
                print(exc)
    """)
    assert proc.stdout.splitlines() == [
        "bad value 'x' for option 'exitcode' (racewatch.start()): expected an exit status from 1 "
        "to 255",
        "unknown option 'nonsense' (racewatch.start())",
        "bad value 2 for option 'halt_on_error' (racewatch.start())",
    ]


def test_start_under_x_race_joins_the_running_session(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "lib.py").write_text(LIB)
    (tmp_path / "main.py").write_text(textwrap.dedent("""
        import racewatch
        from racewatch.config import ConfigError
        detector = racewatch.start()
        print(detector.owned)
        try:
            racewatch.start(exitcode=3)
        except ConfigError as exc:
            print("refused")
        import lib
        lib.race()
        detector.stop()  # not its own session: still running
        print(len(racewatch.races()))
    """))
    proc = run(python_args("main.py"), cwd=tmp_path,
               env=clean_env(PYTHONRACE=f"runtime={RUNTIME}"))
    assert proc.stdout.splitlines() == ["False", "refused", "1"], proc.stderr
    assert proc.returncode == 66
