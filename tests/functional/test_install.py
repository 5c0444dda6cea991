"""`pip install .` and `pip install -e .` both put the startup .pth into site-packages (purelib),
and `pip uninstall` takes it away. Builds a copy of the project in fresh virtual environments."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import PROGRAMS, ROOT, clean_env, run

pytestmark = pytest.mark.slow

SKIP = shutil.ignore_patterns(".git", ".tox", "build", "dist", "__pycache__", "*.so",
                              "*.egg-info", ".pytest_cache", ".venv*")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    target = tmp_path_factory.mktemp("project") / "racewatch"
    shutil.copytree(ROOT, target, ignore=SKIP)
    return target


def venv(path):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return str(path / "bin" / "python")


def pip(python, *args):
    proc = run([python, "-m", "pip", "--disable-pip-version-check", "-q", *args],
               env=clean_env(PYTHONDONTWRITEBYTECODE=None), timeout=900)
    if proc.returncode != 0 and any(word in proc.stderr for word in (
            "No matching distribution", "Could not find a version", "NewConnectionError")):
        pytest.skip(f"the package index is unreachable: {proc.stderr.splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_install_puts_the_pth_in_purelib(tmp_path, source, editable):
    python = venv(tmp_path / "venv")
    pip(python, "install", *(["-e"] if editable else []), str(source))
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                  ).stdout.strip()
    pth = os.path.join(purelib, "a0_racewatch.pth")
    with open(pth, encoding="utf-8") as f, open(os.path.join(ROOT, "src", "a0_racewatch.pth"),
                                                encoding="utf-8") as ours:
        assert f.read() == ours.read()

    race = os.path.join(PROGRAMS, "activate_race.py")
    proc = run([python, "-X", "race", race], cwd=PROGRAMS)
    assert proc.returncode == 66 and "WARNING: DATA RACE" in proc.stderr, proc.stderr
    schema = ("import importlib.resources as r; "
              "print((r.files('racewatch') / 'report_schema.json').is_file())")
    assert run([python, "-c", schema]).stdout == "True\n"  # package data, in a wheel too
    code = "import sys; print([m for m in sys.modules if m.startswith('racewatch')])"
    assert run([python, "-c", code]).stdout == "[]\n"

    pip(python, "uninstall", "-y", "racewatch")
    assert not os.path.exists(pth)
