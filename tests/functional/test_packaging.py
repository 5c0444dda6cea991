"""Release-ready packaging: `python -m build` gives an sdist holding what it takes to build and
test racewatch and a wheel holding the package, both passing `twine check --strict`; the
cibuildwheel configuration and the GitHub workflow cover every supported CPython."""

import os
import re
import subprocess
import tarfile
import tomllib
import zipfile

import pytest

from tests.helpers import ROOT, clean_env, run
from tests.functional.test_install import pip, source, venv  # noqa: F401 - fixtures

WORKFLOW = os.path.join(ROOT, ".github", "workflows", "ci.yml")
# Tracked files an sdist needs not hold: CI machinery of this repository.
NOT_SHIPPED = (".ci/", ".github/", ".gitignore")


def pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_cibuildwheel_builds_every_supported_cpython_and_the_free_threaded_ones():
    config = pyproject()["tool"]["cibuildwheel"]
    assert set(config["build"]) == {"cp311-*", "cp312-*", "cp313-*", "cp314-*", "cp315-*",
                                    "cp313t-*", "cp314t-*"}
    assert "cpython-freethreading" in config["enable"]  # cp313t is opt-in
    assert "not slow" in config["test-command"] and config["test-extras"] == ["test"]
    versions = {c.rpartition(" :: ")[2] for c in pyproject()["project"]["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")}
    assert versions == {"3.11", "3.12", "3.13", "3.14", "3.15"}


def test_the_workflow_runs_every_tox_environment_and_builds_the_release():
    with open(WORKFLOW, encoding="utf-8") as f:
        workflow = f.read()
    with open(os.path.join(ROOT, "tox.ini"), encoding="utf-8") as f:
        env_list = re.search(r"^env_list = (.*)$", f.read(), re.M).group(1)
    envs = set()
    for part in (p.strip() for p in env_list.split(", ")):  # py3{11,...}-c, ft-{c,nogil}
        expanded = re.sub(r"\{([^}]*)\}", lambda m: "|" + m.group(1) + "|", part).split("|")
        if len(expanded) == 1:
            envs.add(part)
        else:
            head, choices, tail = expanded
            envs.update(head + choice + tail for choice in choices.split(","))
    assert set(re.findall(r"\{env: ([\w-]+),", workflow)) == envs
    for step in ("pypa/cibuildwheel@", "python -m build --sdist", "twine check --strict",
                 "pypa/gh-action-pypi-publish@"):
        assert step in workflow


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("RACEWATCH_TEST_RECIPES"),
                    reason="builds once per CI run (tox.ini's py311-c sets RACEWATCH_TEST_RECIPES)")
def test_build_gives_an_sdist_and_a_wheel_that_pass_twine_check(tmp_path, source):  # noqa: F811
    python = venv(tmp_path / "venv")
    pip(python, "install", "build", "twine")
    dist = tmp_path / "dist"
    built = run([python, "-m", "build", "--outdir", str(dist), str(source)],
                env=clean_env(PYTHONDONTWRITEBYTECODE=None), timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    (sdist,) = dist.glob("racewatch-*.tar.gz")
    (wheel,) = dist.glob("racewatch-*.whl")
    check = run([python, "-m", "twine", "check", "--strict", str(sdist), str(wheel)])
    assert check.returncode == 0, check.stdout + check.stderr

    with tarfile.open(sdist) as tar:
        shipped = {name.partition("/")[2] for name in tar.getnames()}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files to compare with")
    needed = {name for name in tracked.stdout.splitlines()
              if not name.startswith(NOT_SHIPPED) and os.path.exists(os.path.join(ROOT, name))}
    assert needed - shipped == set()
    for name in ("src/racewatch/runtime/fast/module.c", "src/racewatch/cover/_counters_api.h",
                 "src/a0_racewatch.pth", "tests/conftest.py", "fixtures", "tox.ini", "LICENSE"):
        assert name in shipped

    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert "a0_racewatch.pth" in names and "racewatch/report_schema.json" in names
    assert any(re.match(r"racewatch/runtime/_fast\..*\.so$", n) for n in names), names
    assert not [n for n in names if n.endswith((".c", ".h")) or n.startswith("tests/")]
