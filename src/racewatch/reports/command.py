"""`racewatch report FILE... --format text|json|sarif [-o OUT]`: merge and convert JSON reports."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import argparse
import json
import os
import subprocess
import sys

from racewatch.reports import merge, paths, reader, sarif, stream, text

DESCRIPTION = """\
Read JSON reports (written with --format=json, e.g. --log-path=race: one file race.<pid> per
process), merge them (the same race found by several processes is one finding, its counts
summed), and write them as Go-style text, one JSON report, or SARIF 2.1.0 for code scanning.
A report cut off by a killed process is read up to its last complete line.
"""


# The exit status when the reports hold findings: the `exitcode` option's default.
FOUND = 66


def _parser():
    parser = argparse.ArgumentParser(prog="racewatch report", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON report files")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                        help="what to write (default: text)")
    parser.add_argument("-o", "--output", default="-",
                        help="the file to write, replaced atomically (default: - for stdout)")
    parser.add_argument("--exit-zero", action="store_true",
                        help="exit 0 even when the reports hold findings (by default the "
                             f"status is {FOUND}, as a program with races gets, so the "
                             "command can gate CI)")
    parser.add_argument("--root", default=None,
                        help="SARIF: paths under this directory are written relative to it "
                             "(%%SRCROOT%%); default: the git top level of the current "
                             "directory, else the current directory")
    return parser


def main(argv):
    args = _parser().parse_args(argv)
    findings = []
    try:
        reports = [r for path in args.files for r in reader.read(path, warn)]
        findings = merge.merge(reports)
        output = _render(args, reports, findings)
        _write(args.output, output)
        if findings and not args.exit_zero:
            return FOUND
    except reader.ReportError as exc:
        sys.stderr.write(f"racewatch: {exc}\n")
        return 1
    except BrokenPipeError:  # `racewatch report ... | head`
        sys.stderr.close()
        return FOUND if findings and not args.exit_zero else 0
    except OSError as exc:
        sys.stderr.write(f"racewatch: {exc.filename or args.output}: {exc.strerror or exc}\n")
        return 1
    return 0


def warn(message):
    sys.stderr.write(f"racewatch: warning: {message}\n")


def _render(args, reports, findings):
    from racewatch import __version__
    if args.format == "sarif":
        log = sarif.sarif_log(findings, args.root or _default_root(), __version__)
        return json.dumps(log, indent=2) + "\n"
    if args.format == "json":
        return "".join(stream.dumps(r) for r in merged_records(reports, findings))
    races = [f for f in findings if f.type == "race"]
    return "".join([*(text.finding_text(f.record) for f in findings),
                    text.summary_text([_pair(f) for f in races],
                                      len(findings) - len(races))])


def _pair(finding):
    """(site, access, site, access, count), as text.group_pairs takes it."""
    (a, b), (access_a, access_b) = finding.sites, finding.accesses or (None, None)
    return a, access_a, b, access_b, finding.count


def merged_records(reports, findings):
    """The merged report as records: a header naming its sources, the findings numbered
    anew with their counts, and the summary."""
    sources = [{"file": r.path, "pid": r.header.get("pid"), "python": r.header.get("python"),
                "racewatch": r.header.get("racewatch"), "argv": r.header.get("argv"),
                "complete": r.complete} for r in reports]
    header = stream.header(sources=sources)
    bases = {(r.header.get("cwd"), r.header.get("strip_path_prefix") or "") for r in reports}
    if len(bases) == 1:  # one way to resolve paths: keep them as the processes wrote them
        (cwd, strip), = bases
        header.update(cwd=cwd, strip_path_prefix=strip)
    else:  # sources disagree on how relative paths resolve: make them absolute
        header.update(strip_path_prefix="")
    records = [header]
    pairs = []
    for ident, finding in enumerate(findings, 1):
        record = finding.record if len(bases) == 1 else paths.absolute(finding.record,
                                                                       finding.origin.header)
        records.append({**record, "id": ident, "count": finding.count,
                        "processes": finding.processes})
        if finding.type == "race":
            pair = {"id": ident, "sites": finding.sites, "count": finding.count,
                    "processes": finding.processes}
            if finding.accesses:
                pair["accesses"] = finding.accesses
            pairs.append(pair)
    records.append(stream.summary(pairs, inversions=len(findings) - len(pairs),
                                  processes=len(reports)))
    return records


def _default_root():
    try:
        found = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return os.getcwd()
    top = found.stdout.strip()
    return top if found.returncode == 0 and top else os.getcwd()


def _write(path, data):
    if path == "-":
        sys.stdout.write(data)
        sys.stdout.flush()
        return
    from racewatch.cover import atomicwrite
    atomicwrite.write_bytes(path, data.encode("utf-8"))
