"""Which modules get instrumented: patterns, the default of the user's own code, exclusions."""

import json
import os
import sysconfig

from racewatch.rewriter.project import project_root
from racewatch.rewriter.select import Selector


def test_pattern_covers_submodules():
    selector = Selector(include=("app",))
    assert selector.wants_name("app") and selector.wants_name("app.models")
    assert not selector.wants_name("application") and not selector.wants_name("other")


def test_glob_patterns_and_exclude_wins():
    selector = Selector(include=("app.*",), exclude=("app.vendor",))
    assert selector.wants_name("app.core")
    assert not selector.wants_name("app.vendor") and not selector.wants_name("app.vendor.x")


def test_racewatch_and_its_rewriter_are_never_instrumented():
    selector = Selector(include=("*",))
    assert not selector.wants_name("racewatch") and not selector.wants_name("racewatch.cli")
    assert not selector.wants_name("bytecode.instr")
    assert selector.wants_name("json")  # stdlib, when the user asks for everything


def test_default_is_the_projects_code(tmp_path):
    selector = Selector(roots=(str(tmp_path),))
    assert selector.wants("mine", str(tmp_path / "mine.py"))
    assert not selector.wants("elsewhere", "/somewhere/else/elsewhere.py")
    assert not selector.wants("json", json.__file__)  # stdlib, by name and by path
    site = sysconfig.get_paths()["purelib"]
    assert not selector.wants("pkg", os.path.join(site, "pkg", "__init__.py"))


def test_default_skips_installed_code_under_the_project(tmp_path):
    selector = Selector(roots=(str(tmp_path),))
    venv_file = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "lib.py"
    assert not selector.wants("lib", str(venv_file))


def test_project_root_is_found_from_a_subdirectory(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    assert project_root(str(deep)) == str(tmp_path)
