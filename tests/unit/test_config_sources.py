"""Where options come from: [tool.racewatch], PYTHONRACE, -X race and flags, in that order."""

import os

import pytest

from racewatch import config


def write_pyproject(directory, body):
    path = directory / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_precedence_pyproject_then_environment_then_x_then_flags(tmp_path):
    write_pyproject(tmp_path, "[tool.racewatch]\nexitcode = 3\nhalt_on_error = true\n"
                              "history = 'full'\nformat = 'json'\n")
    options = config.resolve(str(tmp_path), {"format": "text"},
                             environ={"PYTHONRACE": "exitcode=4 history=site"},
                             xoptions={"race": "exitcode=5"})
    assert options.exitcode == 5           # -X race beats PYTHONRACE beats pyproject
    assert options.history == "site"       # PYTHONRACE beats pyproject
    assert options.halt_on_error is True   # only pyproject set it
    assert options.format == "text"        # flags beat everything


def test_nearest_pyproject_above_the_start(tmp_path):
    write_pyproject(tmp_path, "[tool.racewatch]\nexitcode = 9\n")
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    assert config.find_pyproject(str(nested)) == str(tmp_path / "pyproject.toml")
    assert config.resolve(str(nested), environ={}, xoptions={}).exitcode == 9


def test_nearest_pyproject_without_the_table_means_defaults(tmp_path):
    write_pyproject(tmp_path, "[tool.racewatch]\nexitcode = 9\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    write_pyproject(inner, "[project]\nname = 'x'\n")
    assert config.resolve(str(inner), environ={}, xoptions={}).exitcode == 66


def test_toml_native_values(tmp_path):
    path = write_pyproject(tmp_path, "[tool.racewatch]\ninclude = ['app', 'lib.*']\n"
                                     "exclude = 'tests'\ncache = false\nlog_path = 'r/race'\n")
    assert config.read_pyproject(str(path)) == {
        "include": ("app", "lib.*"), "exclude": ("tests",), "cache": False,
        "log_path": "r/race"}


def test_suppressions_path_relative_to_the_pyproject(tmp_path):
    path = write_pyproject(tmp_path, "[tool.racewatch]\nsuppressions = 'race.supp'\n")
    assert config.read_pyproject(str(path))["suppressions"] == str(tmp_path / "race.supp")


@pytest.mark.parametrize("body, message", [
    ("[tool.racewatch]\nbogus = 1\n", "unknown option 'bogus'"),
    ("[tool.racewatch]\nexitcode = 'x'\n", "bad value 'x' for option 'exitcode'"),
    ("[tool.racewatch]\nexitcode = true\n", "bad value True for option 'exitcode'"),
    ("[tool.racewatch]\nhalt_on_error = 1\n", "bad value 1 for option 'halt_on_error'"),
    ("[tool.racewatch]\ninclude = [1]\n", "bad value [1] for option 'include'"),
    ("[tool]\nracewatch = 3\n", "malformed"),
    ("[tool.racewatch\n", "cannot read"),
])
def test_pyproject_errors_are_one_line_naming_the_option(tmp_path, body, message):
    path = write_pyproject(tmp_path, body)
    with pytest.raises(config.ConfigError) as err:
        config.read_pyproject(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("environ, xoptions, expected", [
    ({}, {}, []),
    ({"PYTHONRACE": ""}, {}, []),
    ({"PYTHONRACE": "0"}, {}, []),
    ({"PYTHONRACE": "off"}, {"race": "0"}, []),
    ({"PYTHONRACE": "1"}, {}, [("1", "PYTHONRACE")]),
    ({}, {"race": True}, [("1", "-X race")]),
    ({"PYTHONRACE": "exitcode=3"}, {"race": "halt_on_error=1"},
     [("exitcode=3", "PYTHONRACE"), ("halt_on_error=1", "-X race")]),
])
def test_requested(environ, xoptions, expected):
    assert config.requested(environ, xoptions) == expected


def test_environment_errors_name_their_source():
    with pytest.raises(config.ConfigError, match=r"unknown option 'nope' \(-X race\)"):
        config.from_environment({"PYTHONRACE": "1"}, {"race": "nope=1"})
    with pytest.raises(config.ConfigError, match=r"\(PYTHONRACE\)"):
        config.from_environment({"PYTHONRACE": "exitcode=x"}, {})


def test_native_values_for_the_python_api():
    assert config.native_value("include", ["a", "b"], "api") == ("a", "b")
    assert config.native_value("exitcode", 3, "api") == 3
    assert config.native_value("exitcode", "3", "api") == 3
    with pytest.raises(config.ConfigError, match="bad value 3.5 for option 'exitcode'"):
        config.native_value("exitcode", 3.5, "api")


def test_no_pyproject_anywhere(tmp_path, monkeypatch):
    monkeypatch.setattr(os.path, "isfile", lambda path: False)
    assert config.find_pyproject(str(tmp_path)) is None
