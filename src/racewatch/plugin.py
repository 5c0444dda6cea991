"""pytest plugin entry point; kept import-light so loading pytest imports nothing else of racewatch.

Only the options table (config.py) is read here. With `--race` (or `race = true` in the ini
file, or racewatch already started by -X race / PYTHONRACE) the real work is imported from
pytest_race.py, early enough for the import hook to see conftest files and test modules.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import argparse
import sys

import pytest

from racewatch import config

COVER_REPORTS = ("term", "term-missing", "none")
ON_OFF = ("0", "1", "true", "false", "yes", "no", "on", "off")
MARKER = ("racy: the test is expected to race; under --race it fails if no race is detected "
          "while it runs")


def pytest_addoption(parser):
    group = parser.getgroup("racewatch", "data-race detection (racewatch)")
    group.addoption("--race", action="store_true", default=False,
                    help="instrument the project and its tests; a race found while a test "
                         "runs fails that test")
    for option in config.OPTIONS:
        spelled = config.pytest_flag(option)
        if option.metavar and option.implicit is None:
            group.addoption(spelled, metavar=option.metavar, default=None,
                            help=_plain(option.help))
            continue
        # On/off options (`--race-cache`, `--race-cache=0`) and `--race-cover[=MODE]`: the
        # bare flag takes no value, so `pytest --race-cover tests/` keeps its path (an
        # optional argparse value would swallow it); each `=VALUE` is its own option string.
        values = ON_OFF + (config.COVER_MODES if option.implicit else ())
        dest = "race_" + option.name
        group.addoption(spelled, action="store_const", const=option.implicit or "1",
                        dest=dest, default=None, help=_plain(option.help) + (
                            f" ({spelled}=MODE for a mode)" if option.implicit else
                            f" ({spelled}=0 turns it off)"))
        for value in values:
            group.addoption(f"{spelled}={value}", action="store_const", const=value, dest=dest,
                            help=argparse.SUPPRESS)
    group.addoption("--race-cover-report", choices=COVER_REPORTS, default="term",
                    help="with --race-cover: the coverage table printed at the end of the "
                         "run, as pytest-cov's --cov-report: term (default), term-missing "
                         "(with the lines that never ran) or none")
    parser.addini("race", type="bool", default=False,
                  help="run as if --race were given (racewatch)")


def _plain(text):
    return text.replace("`", "").replace("%", "%%")  # argparse formats help with %


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before conftest files and test modules are imported (and in front of pytest's own
    assertion-rewriting hook, which interop.py then works with)."""
    _check_spelling(args)
    if _wanted(early_config):
        from racewatch import pytest_race
        pytest_race.start(early_config)


def _check_spelling(args):
    """`--race-halt-on-eror`: pytest only says "unrecognized arguments"; name the closest."""
    known = {config.pytest_flag(o) for o in config.OPTIONS} | {"--race", "--race-cover-report"}
    for arg in args:
        if arg == "--":
            break
        flag = arg.partition("=")[0]
        if flag.startswith("--race") and flag not in known:
            error = config.unknown(flag, "pytest", prefix="--race-")
            raise pytest.UsageError(f"racewatch: {error}")


def _wanted(early_config):
    args = early_config.known_args_namespace
    if getattr(args, "race", False) or getattr(args, "race_cover", None) is not None:
        return True  # --race-cover alone starts racewatch too
    try:
        if early_config.getini("race"):
            return True
    except (ValueError, pytest.UsageError) as exc:  # a malformed `race = ...` ini value
        raise pytest.UsageError(f"racewatch: bad value for ini option 'race': {exc}") from None
    running = sys.modules.get("racewatch.session")  # started by -X race / PYTHONRACE
    return running is not None and running.current is not None and running.current.active
