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
    ("exitcode=x", "bad value 'x' for option 'exitcode' (PYTHONRACE): expected an integer"),
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
