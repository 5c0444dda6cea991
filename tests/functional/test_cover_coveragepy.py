"""racewatch's coverage.py data files work with coverage.py unchanged: `coverage combine` and
`coverage report` print what `coverage run` would, alone or mixed with `coverage run -p` files,
under the user's [run] settings (branch, source, relative_files, data_file)."""

import json
import os
import sys

import pytest

from tests import helpers
from tests.cover_helpers import counts_files, coverage_files

CALC = '''\
import threading


def work(n):
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        else:
            total -= 1
    return total


def never():
    return "not run"


def run_threads():
    results = []
    threads = [threading.Thread(target=lambda: results.append(work(50))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results)
'''

OTHER = '''\
def hello(name):
    if name:
        return f"hello, {name}"
    return "nobody"
'''

MAIN = '''\
import sys
from pkg import calc

print(calc.run_threads())
if len(sys.argv) > 1:
    from pkg import other
    print(other.hello(sys.argv[1]))
'''


def project(root, config=""):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text(CALC)
    (root / "pkg" / "other.py").write_text(OTHER)
    (root / "pkg" / "untouched.py").write_text("VALUE = 1\n\n\ndef f():\n    return VALUE\n")
    (root / "main.py").write_text(MAIN)
    if config:
        (root / ".coveragerc").write_text(config)
    return root


def coverage(root, *args):
    return helpers.run([sys.executable, "-m", "coverage", *args], cwd=str(root))


def racewatch(root, *args):
    return helpers.run(helpers.racewatch_args(*args), cwd=str(root))


def report(root, *extra):
    combined = coverage(root, "combine")
    assert combined.returncode == 0, combined.stderr
    shown = coverage(root, "report", "-m", *extra)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


@pytest.mark.parametrize("race", [True, False], ids=["race", "no-race"])
def test_report_equals_coverage_runs(tmp_path, race):
    theirs = project(tmp_path / "theirs")
    ours = project(tmp_path / "ours")
    assert coverage(theirs, "run", "-p", "main.py").returncode == 0
    proc = racewatch(ours, "--cover", *([] if race else ["--no-race"]), "main.py")
    assert proc.returncode == 0 and proc.stdout == "3200\n", proc.stderr
    assert len(coverage_files(ours)) == 1 and len(counts_files(ours)) == 1
    assert report(ours) == report(theirs)


def test_mixed_with_coverage_run_p_files(tmp_path):
    mixed = project(tmp_path / "mixed")
    both = project(tmp_path / "both")
    assert racewatch(mixed, "--cover", "main.py").returncode == 0       # calc, by racewatch
    assert coverage(mixed, "run", "-p", "main.py", "ann").returncode == 0  # calc and other
    assert coverage(both, "run", "-p", "main.py").returncode == 0
    assert coverage(both, "run", "-p", "main.py", "ann").returncode == 0
    combined = coverage(mixed, "combine")
    assert combined.returncode == 0 and "Combined 2 files" in combined.stdout + combined.stderr
    assert counts_files(mixed)  # coverage.py leaves racewatch's counts files alone
    assert coverage(mixed, "report", "-m").stdout == report(both)


def _executed(root, name):
    out = coverage(root, "json", "-o", "-", "--show-contexts").stdout
    return json.loads(out)["files"][name]["executed_lines"]


def test_branch_true_is_refused_clearly(tmp_path):
    """racewatch measures lines: under `branch = true` its lines would show as partial
    branches, so it writes no coverage.py file, says why once, and keeps its counts file."""
    ours = project(tmp_path / "ours", "[run]\nbranch = true\n")
    proc = racewatch(ours, "--cover", "main.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("racewatch: warning: coverage.py's configuration asks for branch "
                             "coverage (branch = true)") == 1, proc.stderr
    assert coverage_files(ours) == [] and len(counts_files(ours)) == 1
    assert coverage(ours, "run", "-p", "main.py").returncode == 0  # coverage's own still works
    combined = coverage(ours, "combine")
    assert combined.returncode == 0, combined.stderr


def test_main_module_of_a_source_package_is_measured(tmp_path):
    """`source = pkg` names a package (no such directory here): its main module, run by
    `-m pkg.app` or by path, is `__main__`, and is measured as coverage.py measures it."""
    app = "from pkg import calc\nprint(calc.run_threads())\n"
    for how in ("module", "path"):
        ours = project(tmp_path / how / "ours", "[run]\nsource = pkg\n")
        theirs = project(tmp_path / how / "theirs", "[run]\nsource = pkg\n")
        for root in (ours, theirs):  # src layout: `pkg` is a package name, not a directory
            (root / "pkg" / "app.py").write_text(app)
            (root / "src").mkdir()
            (root / "pkg").rename(root / "src" / "pkg")
        target = ["-m", "pkg.app"] if how == "module" else [os.path.join("src", "pkg", "app.py")]
        for root, argv in ((ours, helpers.racewatch_args("--cover", *target)),
                           (theirs, [sys.executable, "-m", "coverage", "run", "-p", *target])):
            env = helpers.clean_env(PYTHONPATH=str(root / "src"))
            proc = helpers.run(argv, cwd=str(root), env=env)
            assert proc.returncode == 0, proc.stderr
        text = report(ours)
        app_row = next(line for line in text.splitlines() if "app.py" in line)
        assert app_row.split()[1:4] == ["2", "0", "100%"], text
        if how == "module":
            assert text == report(theirs)


def test_source_filters_and_lists_unexecuted_files(tmp_path):
    config = "[run]\nsource = pkg\n"
    ours = project(tmp_path / "ours", config)
    theirs = project(tmp_path / "theirs", config)
    assert racewatch(ours, "--cover", "main.py").returncode == 0
    assert coverage(theirs, "run", "-p", "main.py").returncode == 0
    text = report(ours)
    assert "main.py" not in text and os.path.join("pkg", "untouched.py") in text
    assert text == report(theirs)


def test_source_packages_select_by_module_name(tmp_path):
    config = "[run]\nsource_pkgs = pkg.calc\n"  # a name, not a directory: matched by module
    ours = project(tmp_path / "ours", config)
    theirs = project(tmp_path / "theirs", config)
    assert racewatch(ours, "--cover", "main.py").returncode == 0
    assert coverage(theirs, "run", "-p", "main.py").returncode == 0
    text = report(ours)
    assert os.path.join("pkg", "calc.py") in text and os.path.join("pkg", "other.py") not in text
    assert text == report(theirs)


def test_relative_files_and_data_file(tmp_path):
    config = "[run]\nrelative_files = true\ndata_file = data/.cov\n"
    ours = project(tmp_path / "ours", config)
    (ours / "data").mkdir()
    assert racewatch(ours, "--cover", "main.py").returncode == 0
    assert coverage_files(ours) == [] and coverage_files(ours / "data") == []
    assert len(list((ours / "data").glob(".cov.racewatch.*"))) == 1
    assert len(counts_files(ours / "data")) == 1  # the counts file goes beside it
    shown = coverage(ours, "debug", "data").stdout
    assert f"\n{os.path.join('pkg', 'calc.py')}: " in shown  # stored relative
    assert f"{os.path.join(str(ours), 'pkg')}" not in shown
