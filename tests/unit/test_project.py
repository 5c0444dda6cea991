"""The project's own packages are selected by name wherever they are installed (pytest-cov's
`--cov=pkg`), and modules imported before the hook are named in one warning."""

import enum  # noqa: F401 - imported before the selector looks, as racewatch imports them
import functools  # noqa: F401
import json.decoder  # noqa: F401
import os
import sys
import sysconfig

from racewatch.rewriter import project, select


def make_project(root, name="sample-app", layout="src"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1"\n')
    base = root / "src" if layout == "src" else root
    (base / "sample_app").mkdir(parents=True)
    (base / "sample_app" / "__init__.py").write_text("")
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    return root


def install(site, name="sample_app", dist="sample_app-1.dist-info", record=True):
    """What a non-editable `pip install` leaves: the package and its dist-info RECORD."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("")
    (site / dist).mkdir()
    if record:
        (site / dist / "RECORD").write_text(
            f"{name}/__init__.py,sha256=x,0\n{name}/__pycache__/__init__.cpython-311.pyc,,\n"
            f"{dist}/RECORD,,\n../../../bin/sample-app,sha256=y,10\n")


def test_src_layout_packages_are_the_projects_own(tmp_path):
    root = make_project(tmp_path / "proj")
    (root / "src" / "helper.py").write_text("")
    (root / "docs").mkdir()
    assert project.own_packages(str(root)) == {"sample_app", "helper"}


def test_flat_layout_skips_tests_and_docs(tmp_path):
    root = make_project(tmp_path / "proj", layout="flat")
    (root / "docs").mkdir()
    (root / "docs" / "__init__.py").write_text("")
    assert project.own_packages(str(root)) == {"sample_app"}


def test_installed_distribution_names_its_top_level_packages(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    install(site, name="renamed_pkg")
    monkeypatch.setattr(sys, "path", [str(site)])
    assert project.installed_top_level("Sample-App") == {"renamed_pkg"}
    (site / "sample_app-1.dist-info" / "top_level.txt").write_text("from_top_level\n")
    assert project.installed_top_level("sample.app") == {"from_top_level"}


def test_distribution_name_from_pyproject_or_setup_cfg(tmp_path):
    assert project.distribution_name(str(make_project(tmp_path / "a"))) == "sample-app"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "setup.cfg").write_text("[metadata]\nname = other\n")
    assert project.distribution_name(str(tmp_path / "b")) == "other"
    assert project.distribution_name(str(tmp_path)) is None


def test_default_selects_the_projects_package_installed_in_site_packages(tmp_path, monkeypatch):
    root = make_project(tmp_path / "proj")
    site = tmp_path / "venv" / "lib" / "site-packages"
    install(site)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    selector = select.Selector(roots=(str(root),))
    assert selector.wants("sample_app", str(site / "sample_app" / "__init__.py"))
    assert selector.wants("sample_app.core", str(site / "sample_app" / "core.py"))
    purelib = sysconfig.get_paths()["purelib"]
    assert not selector.wants("other", os.path.join(purelib, "other", "__init__.py"))


def test_a_directory_that_is_no_project_selects_no_packages_by_name(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    assert select.Selector(roots=(str(tmp_path),)).packages == frozenset()


def test_modules_imported_before_the_hook_are_named(tmp_path):
    selector = select.Selector(include=("enum", "functools", "json.decoder", "no_such_mod"))
    assert select.imported_before(selector) == ["enum", "functools", "json"]
    text = select.imported_before_warning(["enum", "functools"])
    assert text == "enum, functools were imported before racewatch started, so they are not " \
                   "instrumented"
    many = select.imported_before_warning([f"m{i}" for i in range(10)])
    assert many.startswith("m0, m1, m2, m3, m4, m5, m6, m7 and 2 more were imported")
    assert select.imported_before_warning([]) is None
