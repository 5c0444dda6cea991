"""The coverage options: cover[=MODE], race, cover_flush, and which mode a session runs."""

import pytest

from racewatch import config, session


@pytest.mark.parametrize("text, value", [("atomic", "atomic"), ("SET", "set"), ("count", "count"),
                                         ("1", "on"), ("on", "on"), ("0", ""), ("off", "")])
def test_cover_values(text, value):
    assert config.parse_string(f"cover={text}", "PYTHONRACE") == {"cover": value}


def test_cover_flag_with_or_without_a_mode():
    assert config.parse_cli(["--cover", "app.py"]) == ({"cover": "on"}, ["app.py"])
    assert config.parse_cli(["--cover=count", "--no-race", "app.py"]) == (
        {"cover": "count", "race": False}, ["app.py"])


@pytest.mark.parametrize("text", ["cover=sometimes", "cover_flush=-1", "cover_flush=soon"])
def test_bad_values_are_one_line_errors(text):
    with pytest.raises(config.ConfigError) as err:
        config.parse_string(text, "PYTHONRACE")
    assert "\n" not in str(err.value) and text.split("=")[0] in str(err.value)


def test_toml_values():
    assert config.native_value("cover", True, "pyproject") == "on"
    assert config.native_value("cover", False, "pyproject") == ""
    assert config.native_value("cover_flush", 2, "pyproject") == 2.0
    assert config.native_value("race", False, "pyproject") is False


@pytest.mark.parametrize("values, mode", [
    ({}, None), ({"cover": "on"}, "atomic"), ({"cover": "on", "race": False}, "set"),
    ({"cover": "set"}, "set"), ({"cover": "count", "race": False}, "count"),
    ({"cover": "atomic", "race": False}, "atomic")])
def test_session_mode(values, mode):
    assert session.cover_mode(config.Options(**values)) == mode


def test_count_is_refused_under_race_detection():
    with pytest.raises(config.ConfigError, match="not 'count', when race detection is on"):
        session.cover_mode(config.Options(cover="count"))


def test_values_round_trip_through_pythonrace():
    values = {"cover": "atomic", "race": False, "cover_flush": 0.5, "include": ("a", "b.*")}
    text = " ".join(f"{k}={config.text_value(v)}" for k, v in values.items())
    assert config.parse_string(text, "PYTHONRACE") == values
