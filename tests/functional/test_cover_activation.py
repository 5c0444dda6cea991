"""Coverage from every way racewatch starts: pytest --race-cover, PYTHONRACE="cover=...",
-X race=cover=..., [tool.racewatch] cover = ... ."""

import os

import pytest

from tests import helpers
from tests.cover_helpers import counts_files, coverage_files, line_of, load, summed

pytest_plugins = ["pytester"]

WORK = """
import threading


def spin(n):
    for _ in range(n):
        pass  # the counted line


def in_threads(n, count):
    workers = [threading.Thread(target=spin, args=(n,)) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
"""

TESTS = """
from work import in_threads


def test_threads():
    in_threads(1000, 4)


def test_more():
    in_threads(500, 2)
"""


@pytest.fixture
def project(pytester, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("PYTHON", "RACEWATCH_", "COVERAGE_", "PYTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pytester.makefile(".toml", pyproject="[project]\nname = 'demo'\n")
    pytester.makepyfile(work=WORK, test_work=TESTS)
    return pytester


def spun(directory):
    work = os.path.realpath(os.path.join(str(directory), "work.py"))
    return summed(directory)[work][line_of(work, "# the counted line")]


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                         f"--race-runtime={helpers.RUNTIME}", *args)


@pytest.mark.parametrize("args, mode", [(("--race", "--race-cover"), "atomic"),
                                        (("--race-cover=count", "--race-race=0"), "count"),
                                        (("--race-cover",), "atomic")])
def test_pytest_race_cover(project, args, mode):
    result = run(project, *args)
    result.assert_outcomes(passed=2)
    (path,) = counts_files(project.path)
    assert load(path)["mode"] == mode
    assert spun(project.path) == 5000
    assert len(coverage_files(project.path)) == 1


def test_pytest_race_cover_count_under_race_detection_is_a_usage_error(project):
    result = run(project, "--race", "--race-cover=count")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*racewatch: cover mode must be 'atomic' or 'set', not "
                                 "'count', when race detection is on*"])
    assert counts_files(project.path) == []


SCRIPT = "from work import in_threads\nin_threads(100, 3)\n"


@pytest.mark.parametrize("how", ["PYTHONRACE", "-X", "pyproject"])
def test_activation_by_environment_option_or_project(tmp_path, how):
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "main.py").write_text(SCRIPT)
    options = f"cover=atomic runtime={helpers.RUNTIME}"
    env = helpers.clean_env()
    args = ["main.py"]
    if how == "PYTHONRACE":
        env["PYTHONRACE"] = options
    elif how == "-X":
        args = ["-X", f"race={options}", "main.py"]
    else:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.racewatch]\ncover = true\nruntime = "{helpers.RUNTIME}"\n')
        env["PYTHONRACE"] = "1"
    proc = helpers.run(helpers.python_args(*args), cwd=str(tmp_path), env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    (path,) = counts_files(tmp_path)
    assert load(path)["mode"] == "atomic"  # `cover = true` under race detection: atomic
    assert spun(tmp_path) == 300
