"""`racewatch cover combine | report | html | lcov | erase`: the counts files, summed and shown."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import argparse
import glob
import os
import sys

from racewatch.cover import combine, countsfile, htmlreport, lcov, textreport

DESCRIPTION = """\
Hit counts of programs run with `racewatch run --cover` (or PYTHONRACE="cover=...", pytest
--race-cover). Each process wrote a counts file `.racewatch-cover.*.json`; `combine` adds them
into `.racewatch-cover.json`, which the reports read (without it, they add up the per-process
files in memory). The coverage.py data files written beside them (`.coverage.racewatch.*`)
are for `coverage combine` / `coverage report`, unchanged.
"""


def _parser():
    parser = argparse.ArgumentParser(prog="racewatch cover", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("combine", help="add the per-process counts files into one")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="counts files, or directories holding them (default: this directory)")
    p.add_argument("-o", "--output", default=countsfile.COMBINED,
                   help=f"the combined file (default: {countsfile.COMBINED})")
    p.add_argument("--append", action="store_true",
                   help="add to the existing combined file instead of replacing it")
    p.add_argument("--keep", action="store_true", help="keep the input files")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    for name, text in (("report", "hits per file (and per line with --lines)"),
                       ("html", "pages with a heat map of hits per line"),
                       ("lcov", "an LCOV tracefile with real counts")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data", metavar="FILE",
                       help="a counts file to read (default: the combined file, else the "
                            "per-process files of this directory)")
        if name == "report":
            p.add_argument("--lines", action="store_true",
                           help="every line with its hit count, beside its source")
            p.add_argument("-m", "--show-missing", action="store_true",
                           help="list the lines that never ran")
            p.add_argument("--sort", choices=("name", "hits", "cover"), default="name")
        elif name == "html":
            p.add_argument("-d", "--directory", default="racewatch_htmlcov",
                           help="where the pages go (default: racewatch_htmlcov)")
            p.add_argument("--title", default="racewatch coverage")
        else:
            p.add_argument("-o", "--output", default="racewatch.lcov",
                           help="the tracefile (default: racewatch.lcov; - for stdout)")
    sub.add_parser("erase", help="delete this directory's counts files and racewatch's "
                                 "coverage.py data files")
    return parser


def main(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return globals()["_" + args.command](args)
    except combine.CombineError as exc:
        sys.stderr.write(f"racewatch: {exc}\n")
        return 1
    except BrokenPipeError:  # `racewatch cover report --lines | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        sys.stderr.write(f"racewatch: {exc.filename or ''}: {exc.strerror}\n")
        return 1


def _warn(message):
    sys.stderr.write(f"racewatch: {message}\n")


def _combine(args):
    output, n = combine.combine(args.paths, args.output, keep=args.keep, append=args.append,
                                warn=_warn)
    if not args.quiet:
        sys.stderr.write(f"racewatch: combined {n} counts file{'s' * (n != 1)} into {output}\n")
    return 0


def _report(args):
    counts = combine.load(args.data, _warn)
    if args.lines:
        sys.stdout.write(textreport.line_listing(counts, _warn))
    sys.stdout.write(textreport.file_table(counts, args.show_missing, args.sort))
    return 0


def _html(args):
    counts = combine.load(args.data, _warn)
    index = htmlreport.write(counts, args.directory, _warn, args.title)
    sys.stdout.write(f"Wrote HTML report to {index}\n")
    return 0


def _lcov(args):
    counts = combine.load(args.data, _warn)
    text = lcov.render(counts)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
        sys.stdout.write(f"Wrote LCOV report to {args.output}\n")
    return 0


def _erase(args):
    """The counts files, and the coverage.py data files racewatch wrote beside the configured
    data file (a later `coverage combine` would merge them)."""
    doomed = countsfile.per_process_files(os.getcwd()) + [countsfile.COMBINED]
    try:
        from racewatch.cover import covdata
        data_file = covdata.Settings(os.getcwd()).data_file
    except Exception:  # noqa: BLE001 - no coverage.py, or a config it rejects: its default
        data_file = os.path.join(os.getcwd(), ".coverage")
    doomed += glob.glob(glob.escape(data_file) + ".racewatch.*")
    for path in doomed:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return 0
