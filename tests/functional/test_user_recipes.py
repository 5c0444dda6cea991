"""The README's quick start, and its tox, CI (pytest + SARIF) and coverage recipes, run as a user
runs them: from a clean directory, on a generated src-layout project installed NOT in
development mode, with racewatch installed from a wheel built from this checkout (pip finds it
through PIP_FIND_LINKS, as the README says to until the first release).

Slow (wheels, virtual environments, a tox run): once per CI run, in the env that sets
RACEWATCH_TEST_RECIPES (tox.ini: py311-c), or wherever it is set by hand.
"""

import json
import os
import re
import shutil
import sys

import pytest

from tests.helpers import ROOT, clean_env, run
from tests.functional.test_install import pip, source, venv  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RACEWATCH_TEST_RECIPES"),
                       reason="the user recipes run once per CI run: RACEWATCH_TEST_RECIPES=1"),
]

# The sample package's module is the README's bank example: Account.charge_fee forgets the lock.
BANK = os.path.join(ROOT, "examples", "bank.py")

TESTS = '''\
import threading

from sample_bank.account import Account


def both(*targets):
    threads = [threading.Thread(target=target, args=(1,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_fee_races_with_deposit():
    account = Account("ada")
    both(account.deposit, account.charge_fee)
    assert account.balance == 0


def test_deposits_are_locked():
    account = Account("ada")
    both(account.deposit, account.deposit)
    assert account.balance == 2
'''

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "sample-bank"
version = "1.0"

[tool.setuptools.packages.find]
where = ["src"]
'''


def readme_block(heading, language=""):
    """The first ```LANGUAGE block after the README heading that starts with `heading`."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("\n" + heading):]
    return re.search(rf"^```{language}\n(.*?)^```$", section, re.M | re.S).group(1)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory, source):  # noqa: F811
    """A directory holding a racewatch wheel built from this checkout."""
    dist = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                 str(source)], env=clean_env(PYTHONDONTWRITEBYTECODE=None), timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    return dist


def sample_project(root):
    (root / "src" / "sample_bank").mkdir(parents=True)
    (root / "src" / "sample_bank" / "__init__.py").write_text("")
    shutil.copy(BANK, root / "src" / "sample_bank" / "account.py")
    (root / "tests").mkdir()
    (root / "tests" / "test_account.py").write_text(TESTS)
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def user_env(wheels, **extra):
    """A user's shell: pip finds the racewatch wheel; nothing of an outer tox run (CI runs
    this test inside tox's py311-c) leaks into the inner tox or venv."""
    env = clean_env(PIP_FIND_LINKS=str(wheels), PYTHONDONTWRITEBYTECODE=None, **extra)
    return {k: v for k, v in env.items()
            if not k.startswith(("TOX_", "_TOX")) and k != "VIRTUAL_ENV"}


def test_quick_start_first_command(tmp_path, source):  # noqa: F811
    """In a clone: a venv, racewatch installed, and the bundled example reported."""
    command = readme_block("## Quick start").splitlines()[0]
    assert command.startswith("python3 -m venv .venv && ")
    clone = tmp_path / "racewatch"
    os.symlink(source, clone)  # the copy of the checkout is the clone
    proc = run(["sh", "-c", command.replace("python3 ", f"{sys.executable} ", 1)],
               cwd=str(clone), env=clean_env(PYTHONDONTWRITEBYTECODE=None), timeout=900)
    assert proc.returncode == 66, proc.stderr[-3000:]
    assert "WARNING: DATA RACE" in proc.stderr
    assert "  Account.charge_fee()      examples/bank.py:21" in proc.stderr


def test_tox_recipe_fails_the_racing_test_of_a_non_editable_install(tmp_path, wheels):
    project = sample_project(tmp_path / "sample")
    (project / "tox.ini").write_text(readme_block("## tox", "ini"))
    proc = run([sys.executable, "-m", "tox", "-e", "race"], cwd=str(project),
               env=user_env(wheels), timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "race detected during execution of test" in out, out[-3000:]
    assert re.search(r"FAILED tests/test_account.py::test_fee_races_with_deposit", out), out
    assert "1 failed, 1 passed" in out, out[-3000:]
    # the package the tests ran is the one tox installed into its environment
    assert re.search(r"\.tox/race/lib/python3\.\d+t?/site-packages/sample_bank/account\.py:21",
                     out), out[-3000:]


def test_ci_and_coverage_recipes(tmp_path, wheels):
    """The GitHub Actions steps (install the project and racewatch, JSON reports, SARIF), then
    the coverage recipe, in a user's virtual environment."""
    project = sample_project(tmp_path / "sample")
    python = venv(tmp_path / "venv")
    bin_dir = os.path.dirname(python)
    env = user_env(wheels, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    workflow = readme_block("## CI", "yaml")
    install = re.search(r"- run: (pip install [^#\n]*)", workflow).group(1).strip()
    assert run(["sh", "-c", install], cwd=str(project), env=env, timeout=900).returncode == 0

    reports = tmp_path / "reports"
    reports.mkdir()
    tests = re.search(r"run: (python -m pytest --race [^\n]*)", workflow).group(1)
    proc = run(["sh", "-c", tests], cwd=str(project), env=dict(env, RUNNER_TEMP=str(reports)))
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "race detected during execution of test" in proc.stdout
    sarif = re.search(r"run: (racewatch report [^\n]*)", workflow).group(1)
    proc = run(["sh", "-c", sarif], cwd=str(project), env=dict(env, RUNNER_TEMP=str(reports)))
    assert proc.returncode == 0, proc.stderr
    with open(project / "racewatch.sarif", encoding="utf-8") as f:
        results = json.load(f)["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"data-race"}
    gate = run(["sh", "-c", sarif.replace(" --exit-zero", "")], cwd=str(project),
               env=dict(env, RUNNER_TEMP=str(reports)))
    assert gate.returncode == 66  # without --exit-zero the report gates the job

    # Coverage: `pytest --race --race-cover`, then coverage.py's own commands.
    proc = run([python, "-m", "pytest", "--race", "--race-cover", "-p", "no:cacheprovider"],
               cwd=str(project), env=env)
    assert proc.returncode == 1, proc.stdout[-3000:]
    combined = run([python, "-m", "coverage", "combine"], cwd=str(project), env=env)
    assert combined.returncode == 0, combined.stderr
    shown = run([python, "-m", "coverage", "report"], cwd=str(project), env=env)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "sample_bank/account.py" in line)
    statements, missed = map(int, row.split()[1:3])
    assert 0 < missed < statements, shown.stdout  # the tests run the class, not main()
    counts = run([python, "-m", "racewatch", "cover", "combine"], cwd=str(project), env=env)
    assert counts.returncode == 0, counts.stderr
    table = run([python, "-m", "racewatch", "cover", "report"], cwd=str(project), env=env)
    assert "sample_bank/account.py" in table.stdout, table.stdout + table.stderr
