"""ONE options table, feeding the PYTHONRACE / -X race string, CLI flags, pytest and the docs."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import re
import sys
from collections import namedtuple

from racewatch.errors import ConfigError  # noqa: F401 - config.ConfigError for callers




def _bool(text):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _status(text):
    """An exit status a program can have: 1-255 (0 would hide races; 256 exits as 0)."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError("expected an exit status from 1 to 255") from None
    return _status_range(value)


def _status_range(value):
    if not 1 <= value <= 255:
        raise ValueError("expected an exit status from 1 to 255")
    return value


def _patterns(text):
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    for pattern in patterns:
        _pattern(pattern)
    return patterns


def _pattern(pattern):
    """A module-name pattern, never a file path (`--include app.py` took the script)."""
    if "/" in pattern or os.sep in pattern or pattern.endswith(".py"):
        raise ValueError(f"{pattern!r} is a file path; expected module names or patterns "
                         "(pkg, pkg.sub, pkg.*), comma-separated")


def _rules(text):
    """Suppression rules (`kind:pattern`), comma-separated; each is checked as it is read."""
    rules = _patterns(text)
    for rule in rules:
        _rule(rule)
    return rules


def _rule(rule):
    from racewatch.runtime import suppress  # not at import: suppress imports ConfigError
    try:
        suppress.parse_rule(rule, "")
    except ConfigError:
        raise ValueError(f"malformed suppression {rule!r}: {suppress.EXPECTED}") from None


def _choice(*allowed):
    def parse(text):
        if text not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return text
    return parse


COVER_MODES = ("set", "count", "atomic")


def _cover(text):
    """A coverage mode; on/off words mean "the default mode" / "no coverage"."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return "on"
    if lowered in ("", "0", "false", "no", "off"):
        return ""
    if lowered not in COVER_MODES:
        raise ValueError("expected set, count or atomic (or 1/0)")
    return lowered


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not value >= 0:
        raise ValueError("expected a number of seconds, 0 or more")
    return value


# metavar: empty for on/off options, which are CLI flags without a value.
# implicit: the value of a flag given without one (`--cover` means `--cover=on`).
Option = namedtuple("Option", "name parse default help metavar implicit", defaults=("", None))


OPTIONS = (
    Option("include", _patterns, (),
           "Modules to instrument, comma-separated patterns (`pkg` covers its submodules). "
           "Default: the code of the current project and of the script's directory.",
           "PATTERNS"),
    Option("exclude", _patterns, (),
           "Modules never to instrument, comma-separated patterns.", "PATTERNS"),
    Option("runtime", _choice("c", "python"), "c",
           "Hot-path implementation: `c` (the default; falls back to `python` with a warning "
           "where it was not built) or `python`, the pure-Python reference twin.", "NAME"),
    Option("exitcode", _status, 66,
           "Exit status (1-255) of a program that would have exited 0 but had races.", "N"),
    Option("halt_on_error", _bool, False,
           "Stop the program at its first race report (exit status `exitcode`)."),
    Option("log_path", str, "stderr",
           "Where reports go: `stderr`, `stdout`, or a path prefix; reports then go to "
           "PREFIX.<pid>, one file per process.", "PATH"),
    Option("strip_path_prefix", str, None,
           "Prefix removed from file paths in reports. Default: the project root, so paths "
           "under it are relative to it; an empty value keeps paths absolute.", "PREFIX"),
    Option("format", _choice("text", "json"), "text",
           "Report format: Go-style `text`, or `json`: JSON Lines of the versioned schema "
           "`racewatch/report_schema.json` (a header, one record per finding, a summary), "
           "which `racewatch report` merges and converts to text or SARIF.", "FORMAT"),
    Option("history", _choice("site", "full"), "site",
           "What reports show of the previous access: its `site` (file, line, function; "
           "cheapest) or its `full` stack, recorded at every shadow update.", "MODE"),
    Option("cache", _bool, True,
           "Keep rewritten code in __pycache__ so a warm start does not rewrite again."),
    Option("race", _bool, True,
           "Race detection. `race=0` (`--no-race`) instruments for coverage only: no race "
           "probes, no race runtime."),
    Option("cover", _cover, "",
           "Line coverage: `set` (ran or not), `count` (hits; plain increments) or `atomic` "
           "(hits, exact under any number of threads). `--cover` alone means `atomic` with race "
           "detection (which refuses `count`, as `go test -race` does) and `set` without. Each "
           "process writes a coverage.py data file `.coverage.racewatch.*` and a counts file "
           "`.racewatch-cover.*.json` (see `racewatch cover`).", "MODE", "on"),
    Option("cover_flush", _seconds, 0.0,
           "Also write the coverage files every SECONDS while the program runs, so that a "
           "kill -9 loses at most that much; 0: only when the process ends.", "SECONDS"),
    Option("suppressions", str, "",
           "A suppressions file of `race:`, `race_top:`, `deadlock:` and `thread:` PATTERN "
           "lines (TSan's format); a relative path in pyproject.toml is relative to that "
           "file.", "FILE"),
    Option("suppress", _rules, (),
           "More suppression rules, comma-separated (a list in pyproject.toml), added to "
           "those of the `suppressions` file.", "RULES"),
    Option("baseline", str, "",
           "A baseline file written by `racewatch baseline`: the races and lock-order "
           "inversions in it are known and, like suppressed ones, not reported; only new "
           "findings fail a run (a relative path in pyproject.toml is relative to that "
           "file).", "FILE"),
    Option("print_suppressions", _bool, False,
           "At exit, list the suppressions that fired and how often (TSan's `Suppressions "
           "used:`)."),
    Option("detect_deadlocks", _bool, True,
           "Report lock-order inversions (potential deadlocks): a cycle in the order threads "
           "take locks, even if the run did not deadlock."),
)
BY_NAME = {o.name: o for o in OPTIONS}


class Options:
    """The resolved value of every option; attribute access by option name."""

    def __init__(self, **values):
        for option in OPTIONS:
            setattr(self, option.name, option.default)
        self.update(values)

    def update(self, values):
        for name, value in values.items():
            setattr(self, name, value)

    def __repr__(self):
        return "Options(" + ", ".join(f"{o.name}={getattr(self, o.name)!r}"
                                      for o in OPTIONS) + ")"


def unknown(name, where=None, prefix=""):
    """The error for an unknown option, with the closest known one (`--inclde`: `--include`);
    `prefix`: how flags start (`--`, `--race-`), left out of the comparison."""
    import difflib
    bare = name[len(prefix):].replace("-", "_") if name.startswith(prefix) else name
    close = difflib.get_close_matches(bare, BY_NAME, n=1, cutoff=0.7)
    spelled = prefix + close[0].replace("_", "-") if close and prefix else close and close[0]
    hint = f"; did you mean '{spelled}'?" if close else ""
    return ConfigError(f"unknown option '{name}'" + (f" ({where})" if where else "") + hint)


def parse_value(name, text, where):
    option = BY_NAME.get(name)
    if option is None:
        raise unknown(name, where)
    try:
        return option.parse(text)
    except ValueError as exc:
        raise ConfigError(f"bad value {text!r} for option '{name}' ({where}): {exc}") from None


def parse_string(text, where):
    """GORACE-style `name=value name=value`; a bare `1` just means "on, with defaults"."""
    values = {}
    for item in text.split():
        name, eq, value = item.partition("=")
        if not eq:
            if item in ("1", "true", "on", "yes"):
                continue
            raise ConfigError(f"malformed option {item!r} ({where}): expected name=value")
        if re.search(r",\s*\w+=", value) or "=" in name or name not in BY_NAME and "," in name:
            raise ConfigError(f"malformed options {item!r} ({where}): separate options with "
                              "spaces, not commas (name=value name=value)")
        values[name] = parse_value(name, value, where)
    return values


def text_value(value):
    """An option value as PYTHONRACE spells it (what parse_value reads back)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(value)
    return str(value)


def flag(option):
    return "--" + option.name.replace("_", "-")


def pytest_flag(option):
    return "--race-" + option.name.replace("_", "-")


def parse_cli(args):
    """Leading `--name[=value]` / `--no-name` flags of a command; returns (values, rest)."""
    values = {}
    by_flag = {flag(o): o for o in OPTIONS}
    i = 0
    while i < len(args) and args[i].startswith("--"):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        key, eq, value = arg.partition("=")
        option = by_flag.get(key)
        if option is None and key.startswith("--no-") and not eq:
            option = by_flag.get("--" + key[5:])
            if option is not None and not option.metavar:
                values[option.name] = False
                continue
            option = None
        if option is None:
            raise unknown(key, prefix="--")
        if not eq:
            if not option.metavar:
                values[option.name] = True
                continue
            if option.implicit is not None:
                values[option.name] = parse_value(option.name, option.implicit, "command line")
                continue
            if i >= len(args):
                raise ConfigError(f"option '{key}' needs a value")
            value = args[i]
            i += 1
        values[option.name] = parse_value(option.name, value, "command line")
    return values, args[i:]


# -- where options come from, in increasing precedence: pyproject, PYTHONRACE, -X race, flags --

OFF = ("", "0", "false", "off", "no")  # PYTHONRACE / -X race values that leave racewatch off


def requested(environ=None, xoptions=None):
    """The activation strings in force, [(text, where)], or [] when racewatch is not asked for.

    PYTHONRACE is ignored under -E / -I, like every PYTHON* variable."""
    environ = os.environ if environ is None else environ
    xoptions = sys._xoptions if xoptions is None else xoptions
    found = []
    text = environ.get("PYTHONRACE", "")
    if text.strip().lower() not in OFF and not sys.flags.ignore_environment:
        found.append((text, "PYTHONRACE"))
    x = xoptions.get("race")
    if x is True:
        found.append(("1", "-X race"))
    elif x is not None and x.strip().lower() not in OFF:
        found.append((x, "-X race"))
    return found


def find_pyproject(start):
    """The nearest pyproject.toml in `start` or above it, or None."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def read_pyproject(path):
    """The values of `[tool.racewatch]` in the pyproject.toml at `path`."""
    where = f"{path} [tool.racewatch]"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if b"racewatch" not in raw:
        return {}  # no table of ours: spare every process the import of tomllib (~30 ms)
    import tomllib
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    table = data.get("tool", {}).get("racewatch", {})
    if not isinstance(table, dict):
        raise ConfigError(f"malformed {where}: expected a table")
    values = {name: native_value(name, value, where) for name, value in table.items()}
    for name in ("suppressions", "baseline"):  # relative to the project, not to the cwd
        if values.get(name):
            values[name] = os.path.join(os.path.dirname(path), values[name])
    return values


def native_value(name, value, where):
    """A TOML or Python value for an option: strings parse as everywhere else; bools, ints and
    lists of strings must fit the option."""
    option = BY_NAME.get(name)
    if option is None:
        raise unknown(name, where)
    if isinstance(value, str):
        return parse_value(name, value, where)
    if isinstance(value, bool) and option.implicit is not None:  # `cover = true`
        return parse_value(name, "on" if value else "off", where)
    fits = (isinstance(value, bool) and option.parse is _bool
            or type(value) is int and option.parse is _status
            or type(value) in (int, float) and option.parse is _seconds and value >= 0
            or isinstance(value, (list, tuple)) and option.parse in (_patterns, _rules)
            and all(isinstance(v, str) for v in value))
    if not fits:
        raise ConfigError(f"bad value {value!r} for option '{name}' ({where})")
    if option.parse is _rules:
        for rule in value:
            try:
                _rule(rule)
            except ValueError as exc:
                raise ConfigError(f"bad value for option '{name}' ({where}): {exc}") from None
    try:
        if option.parse is _status:
            return _status_range(value)
        if option.parse is _patterns:
            for pattern in value:
                _pattern(pattern)
    except ValueError as exc:
        raise ConfigError(f"bad value {value!r} for option '{name}' ({where}): {exc}") from None
    if option.parse is _seconds:
        return float(value)
    return tuple(value) if isinstance(value, (list, tuple)) else value


def from_environment(environ=None, xoptions=None):
    """Values from PYTHONRACE, then -X race (which wins)."""
    values = {}
    for text, where in requested(environ, xoptions):
        values.update(parse_string(text, where))
    return values


def resolve(start, flags=None, environ=None, xoptions=None):
    """The options in force: [tool.racewatch] of the project holding `start` (a directory),
    then PYTHONRACE, then -X race, then `flags` (command line or pytest)."""
    values = {}
    path = find_pyproject(start)
    if path is not None:
        values.update(read_pyproject(path))
    values.update(from_environment(environ, xoptions))
    values.update(flags or {})
    return Options(**values)
