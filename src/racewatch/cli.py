"""The `racewatch` command line: `racewatch run`, `racewatch cover ...`, `racewatch report`."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

import racewatch
from racewatch import config, runmain
from racewatch.session import ROOTS_VARIABLE, Session, default_roots

USAGE = """\
usage: racewatch run [OPTIONS] SCRIPT [ARGS...]
       racewatch run [OPTIONS] -m MODULE [ARGS...]
       racewatch cover combine|report|html|lcov|erase ...   (see racewatch cover --help)
       racewatch report FILE... [--format text|json|sarif] [-o OUT]   (see racewatch report --help)
       racewatch baseline FILE... [-o BASELINE]   (see racewatch baseline --help)
       racewatch --version

Run a Python program with its modules instrumented, like `python SCRIPT` / `python -m MODULE`.

options:
"""


def _usage():
    lines = [USAGE]
    for option in config.OPTIONS:
        spelled = config.flag(option) + (f"={option.metavar}" if option.metavar else "")
        if not option.metavar:
            spelled += f", --no-{option.name.replace('_', '-')}"
        lines.append(f"  {spelled}\n      {option.help}\n")
    return "".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(argv)
    except (config.ConfigError, runmain.UsageError) as exc:
        sys.stderr.write(f"racewatch: {exc}\n")
        return 2


def _dispatch(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"racewatch {racewatch.__version__}")
        return 0
    if argv[0] == "run":
        return _run(argv[1:])
    if argv[0] == "cover":
        from racewatch.cover import commands
        return commands.main(argv[1:])
    if argv[0] == "report":
        from racewatch.reports import command
        return command.main(argv[1:])
    if argv[0] == "baseline":
        from racewatch.reports import baseline
        return baseline.main(argv[1:])
    import difflib
    close = difflib.get_close_matches(argv[0], ("run", "cover", "report", "baseline"), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "try 'racewatch --help'"
    raise config.ConfigError(f"unknown command {argv[0]!r} ({hint})")


def _split_target(rest):
    """(script, module, program args) from what follows the options of `run`."""
    if not rest:
        raise config.ConfigError("run needs a script or -m MODULE")
    first = rest[0]
    if first == "-m":
        if len(rest) < 2:
            raise config.ConfigError("option '-m' needs a module name")
        return None, rest[1], rest[2:]
    if first.startswith("-m"):
        return None, first[2:], rest[1:]
    if first.startswith("-") and first != "-":
        raise config.ConfigError(f"unknown option '{first}'")
    return first, None, rest[1:]


def _run(args):
    for arg in args:  # -h/--help among run's options, before the program and its arguments
        if arg in ("-h", "--help"):
            sys.stdout.write(_usage())
            return 0
        if not arg.startswith("--") or arg == "--":
            break
    values, rest = config.parse_cli(args)
    script, module, program_args = _split_target(rest)
    start = os.path.dirname(os.path.abspath(script)) if script is not None else os.getcwd()
    roots = default_roots(script)
    session = Session(config.resolve(start, values), roots)
    session.lead()
    _pass_to_children(values, roots)
    if script is not None:
        outcome = runmain.run_path(script, program_args, session.instrumenter.code_for)
    else:
        outcome = runmain.run_module(module, program_args)
    return session.end(outcome)


def _pass_to_children(values, roots):
    """Subprocesses and multiprocessing children run under racewatch too, with the options of
    this command line (after any PYTHONRACE they would inherit anyway) and this program's code
    as their own: the startup .pth reads PYTHONRACE, as under `-X race`."""
    os.environ[ROOTS_VARIABLE] = os.pathsep.join(dict.fromkeys(roots))
    inherited = os.environ.get("PYTHONRACE", "")
    parts = [] if inherited.strip().lower() in config.OFF else [inherited.strip()]
    for name, value in values.items():
        text = config.text_value(value)
        if any(c.isspace() for c in text):
            sys.stderr.write(f"racewatch: warning: option '{name}' is not passed to child "
                             "processes (its value has spaces)\n")
            continue
        parts.append(f"{name}={text}")
    os.environ["PYTHONRACE"] = " ".join(parts) or "1"
