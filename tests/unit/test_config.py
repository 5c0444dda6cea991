"""The options table: GORACE-style strings and CLI flags, with one-line errors."""

import pytest

from racewatch import config


def test_string_options_parse():
    values = config.parse_string("halt_on_error=1 exitcode=3 include=app,lib.*", "PYTHONRACE")
    assert values == {"halt_on_error": True, "exitcode": 3, "include": ("app", "lib.*")}


def test_bare_one_means_defaults():
    assert config.parse_string("1", "PYTHONRACE") == {}


@pytest.mark.parametrize("text, message", [
    ("nonsense=1", "unknown option 'nonsense' (PYTHONRACE)"),
    ("exitcode=x", "bad value 'x' for option 'exitcode' (PYTHONRACE): expected an exit status "
                    "from 1 to 255"),
    ("halt_on_error=maybe", "bad value 'maybe' for option 'halt_on_error'"),
    ("history", "malformed option 'history' (PYTHONRACE): expected name=value"),
])
def test_string_errors_name_the_option(text, message):
    with pytest.raises(config.ConfigError) as err:
        config.parse_string(text, "PYTHONRACE")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_cli_flags_stop_at_the_program():
    values, rest = config.parse_cli(["--exitcode", "5", "--halt-on-error", "--no-cache",
                                     "--log-path=/tmp/r", "app.py", "--exitcode=9"])
    assert values == {"exitcode": 5, "halt_on_error": True, "cache": False, "log_path": "/tmp/r"}
    assert rest == ["app.py", "--exitcode=9"]


def test_cli_value_missing():
    with pytest.raises(config.ConfigError, match="needs a value"):
        config.parse_cli(["--exitcode"])


def test_defaults_come_from_the_table():
    options = config.Options(exitcode=7)
    assert options.exitcode == 7
    assert options.log_path == "stderr" and options.history == "site"


@pytest.mark.parametrize("text, message", [
    ("exitcode=0", "expected an exit status from 1 to 255"),
    ("exitcode=256", "expected an exit status from 1 to 255"),
    ("exitcode=-1", "expected an exit status from 1 to 255"),
    ("include=examples/bank.py", "'examples/bank.py' is a file path; expected module names"),
    ("exclude=app.py", "'app.py' is a file path"),
    ("a=1,b=2", "separate options with spaces, not commas (name=value name=value)"),
    ("exitcode=3,halt_on_error=1", "separate options with spaces, not commas"),
    ("halt_on_eror=1", "unknown option 'halt_on_eror' (PYTHONRACE); did you mean "
                       "'halt_on_error'?"),
])
def test_bad_values_say_what_is_expected(text, message):
    with pytest.raises(config.ConfigError) as info:
        config.parse_string(text, "PYTHONRACE")
    assert message in str(info.value)


def test_exit_statuses_at_the_ends_of_the_range_are_accepted():
    assert config.parse_string("exitcode=1", "x") == {"exitcode": 1}
    assert config.parse_string("exitcode=255", "x") == {"exitcode": 255}
    assert config.native_value("exitcode", 255, "api") == 255
    with pytest.raises(config.ConfigError, match="from 1 to 255"):
        config.native_value("exitcode", 256, "pyproject.toml")
    with pytest.raises(config.ConfigError, match="is a file path"):
        config.native_value("include", ["app/main.py"], "pyproject.toml")


def test_include_patterns_with_commas_are_one_option():
    assert config.parse_string("include=app,lib.*", "x") == {"include": ("app", "lib.*")}


def test_unknown_flag_suggests_the_closest():
    with pytest.raises(config.ConfigError, match=r"unknown option '--inclde'; did you mean "
                                                 r"'--include'\?"):
        config.parse_cli(["--inclde=app", "app.py"])
    with pytest.raises(config.ConfigError) as info:
        config.parse_cli(["--zzzzzz", "app.py"])
    assert str(info.value) == "unknown option '--zzzzzz'"


def test_include_does_not_take_the_script_as_its_value():
    with pytest.raises(config.ConfigError, match="'examples/bank.py' is a file path"):
        config.parse_cli(["--include", "examples/bank.py"])
