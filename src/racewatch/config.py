"""ONE options table, feeding the PYTHONRACE / -X race string, CLI flags, pytest and the docs."""

from collections import namedtuple


class ConfigError(Exception):
    """A bad option; its message is one line naming the option."""


def _bool(text):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected an integer") from None


def _patterns(text):
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _choice(*allowed):
    def parse(text):
        if text not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return text
    return parse


# metavar: empty for on/off options, which are CLI flags without a value
Option = namedtuple("Option", "name parse default help metavar", defaults=("",))


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
    Option("exitcode", _int, 66,
           "Exit status of a program that would have exited 0 but had races.", "N"),
    Option("halt_on_error", _bool, False,
           "Stop the program at its first race report (exit status `exitcode`)."),
    Option("log_path", str, "stderr",
           "Where reports go: `stderr`, `stdout`, or a path prefix; reports then go to "
           "PREFIX.<pid>, one file per process.", "PATH"),
    Option("strip_path_prefix", str, "",
           "Prefix removed from file paths in reports.", "PREFIX"),
    Option("format", _choice("text", "json"), "text",
           "Report format: Go-style `text`, or `json` (one JSON object per line).", "FORMAT"),
    Option("history", _choice("site", "full"), "site",
           "What reports show of the previous access: its `site` (file, line, function; "
           "cheapest) or its `full` stack, recorded at every shadow update.", "MODE"),
    Option("cache", _bool, True,
           "Keep rewritten code in __pycache__ so a warm start does not rewrite again."),
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


def parse_value(name, text, where):
    option = BY_NAME.get(name)
    if option is None:
        raise ConfigError(f"unknown option '{name}' ({where})")
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
        values[name] = parse_value(name, value, where)
    return values


def flag(option):
    return "--" + option.name.replace("_", "-")


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
            raise ConfigError(f"unknown option '{key}'")
        if not eq:
            if not option.metavar:
                values[option.name] = True
                continue
            if i >= len(args):
                raise ConfigError(f"option '{key}' needs a value")
            value = args[i]
            i += 1
        values[option.name] = parse_value(option.name, value, "command line")
    return values, args[i:]
