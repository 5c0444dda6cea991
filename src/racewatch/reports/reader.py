"""Reading JSON report files: each line checked, a cut-off last line skipped, one-line errors."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import json

from racewatch.reports import stream

FINDINGS = ("race", "lock-order-inversion")
# Keys a reader needs in each record; the rest of the schema is what the runtime promises.
_REQUIRED = {"race": ("location", "access", "previous"), "lock-order-inversion": ("cycle",),
             "summary": ("pairs",)}


class ReportError(Exception):
    """A file that is not a readable racewatch report; the message is one line naming it."""


class Report:
    """One process's report stream: its header, findings in order, and the summary's counts."""

    def __init__(self, path, header):
        self.path = path
        self.header = header
        self.findings = []
        self.counts = {}    # finding id -> times raced, from the summary
        self.sites = {}     # finding id -> the summary's two `file:line` texts
        self.accesses = {}  # finding id -> the summary's two access words (if written)
        self.complete = False

    def count(self, finding):
        ident = finding.get("id")
        return self.counts.get(ident) or finding.get("count") or 1


def read(path, warn):
    """The reports in the file at `path` (a pid reused by a later process appends a second
    stream to the same file: each header starts one); `warn(message)` hears what is skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a racewatch JSON report (not UTF-8 text)") from None
    if not text.strip():
        raise ReportError(f"{path}: empty file, not a racewatch JSON report")
    lines = text.split("\n")
    cut = lines.pop()  # text after the last newline: a line a killed process did not finish
    reports = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            _take(reports, path, number, _parse(path, number, line), warn)
    if cut.strip():
        try:
            record = json.loads(cut)
        except ValueError:
            if not reports:
                raise ReportError(f"{path}: not a racewatch JSON report (no complete line)") \
                    from None
            warn(f"{path}:{len(lines) + 1}: skipped a cut-off last line "
                 "(the process was killed while writing it?)")
        else:
            _take(reports, path, len(lines) + 1, record, warn)
    for report in reports:
        if not report.complete:
            warn(f"{path}: no summary for pid {report.header.get('pid')} (the process did not "
                 "finish?); each of its findings counts once")
    return reports


def _parse(path, number, line):
    try:
        return json.loads(line)
    except ValueError:
        if number == 1:
            raise ReportError(f"{path}: not a racewatch JSON report (line 1 is not JSON; "
                              "was it written with --format=json?)") from None
        raise ReportError(f"{path}:{number}: not valid JSON") from None


def _take(reports, path, number, record, warn):
    kind = record.get("type") if type(record) is dict else None
    if kind == "header":
        reports.append(Report(path, _header(path, number, record)))
        return
    if not reports:
        raise ReportError(f"{path}: not a racewatch JSON report (no header on line 1; was it "
                          "written with --format=json?)")
    report = reports[-1]
    missing = [k for k in _REQUIRED.get(kind, ()) if k not in record]
    if missing:
        raise ReportError(f"{path}:{number}: a {kind} record without {missing[0]!r}")
    if kind in FINDINGS:
        report.findings.append(record)
    elif kind == "summary":
        report.complete = True
        for pair in record["pairs"]:
            if type(pair) is dict and pair.get("id") is not None:
                report.counts[pair["id"]] = pair.get("count", 1)
                report.sites[pair["id"]] = pair.get("sites")
                report.accesses[pair["id"]] = pair.get("accesses")
    else:  # a kind of record this racewatch does not know (a newer one's, same version)
        warn(f"{path}:{number}: skipped a record of unknown type {kind!r}")


def _header(path, number, record):
    if record.get("schema") != stream.SCHEMA:
        raise ReportError(f"{path}:{number}: not a racewatch JSON report "
                          f"(schema {record.get('schema')!r})")
    version = record.get("version")
    if type(version) is not int or version < 1:
        raise ReportError(f"{path}:{number}: bad report schema version {version!r}")
    if version > stream.VERSION:
        raise ReportError(f"{path}: report schema version {version} is newer than this "
                          f"racewatch reads (up to {stream.VERSION}); upgrade racewatch")
    return record
