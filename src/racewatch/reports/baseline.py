"""Baselines: the fingerprints of known findings, so that a run fails only on new ones.

A baseline file holds, for each finding, the SARIF fingerprint (identity.fingerprint: files
relative to the baseline file's directory, functions, access kinds, the location without
addresses; no line numbers), plus what it was, for a reader. `racewatch baseline REPORT...`
writes one from JSON reports; the `baseline` option reads it.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import argparse
import json
import os
import sys

from racewatch.config import ConfigError
from racewatch.reports import identity

SCHEMA = "racewatch-baseline"
VERSION = 1
DEFAULT = "racewatch-baseline.json"


def _relative(root, header):
    from racewatch.reports import sarif
    return sarif.Paths(root).stable(header)


def _entry(record, relative):
    entry = {"fingerprint": identity.fingerprint(record, relative)}
    if record["type"] == "race":
        sides = [identity.top(record[s]["stack"]) for s in ("access", "previous")]
        entry.update(location=identity.scrub(record["location"]),
                     accesses=[record["access"]["access"], record["previous"]["access"]],
                     sites=[f"{relative(f['file'])}:{f['line']}" for f in sides])
    else:
        entry["locks"] = [identity.scrub(e["lock"]["description"]) for e in record["cycle"]]
    return {"type": record["type"], **entry}


def dumps(entries):
    """The text of a baseline file: entries sorted, one per line, so diffs read well."""
    entries = sorted({e["fingerprint"]: e for e in entries}.values(),
                     key=lambda e: (e.get("sites", []), e["fingerprint"]))
    body = ",\n".join("  " + json.dumps(e, sort_keys=True) for e in entries)
    return (f'{{"schema": "{SCHEMA}", "version": {VERSION}, "findings": [\n'
            f'{body}{chr(10) if body else ""}]}}\n')


class Baseline:
    """The known findings of a baseline file; `known(record)` tells one in it, where
    `record` is a finding in its JSON form with the paths the code objects name."""

    def __init__(self, path, fingerprints):
        self.path = path
        self.fingerprints = fingerprints
        self.root = os.path.dirname(os.path.abspath(path))
        self._relative = None
        self.matched = 0

    def known(self, record):
        if self._relative is None:
            self._relative = _relative(self.root, {"cwd": os.getcwd(), "strip_path_prefix": ""})
        found = identity.fingerprint(record, self._relative) in self.fingerprints
        self.matched += found
        return found


def load(path):
    """The Baseline in the file at `path`; a ConfigError (one line) for a bad file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read baseline file {path!r}: {exc.strerror or exc}") \
            from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ConfigError(f"malformed baseline file {path!r}: not JSON ({exc})") from None
    findings = data.get("findings") if type(data) is dict else None
    if type(data) is not dict or data.get("schema") != SCHEMA or type(findings) is not list:
        raise ConfigError(f"malformed baseline file {path!r}: not a racewatch baseline "
                          f"(write one with `racewatch baseline`)")
    if data.get("version") != VERSION:
        raise ConfigError(f"baseline file {path!r} has version {data.get('version')!r}; "
                          f"this racewatch reads version {VERSION}")
    prints = set()
    for number, entry in enumerate(findings, 1):
        value = entry.get("fingerprint") if type(entry) is dict else None
        if type(value) is not str or not value:
            raise ConfigError(f"malformed baseline file {path!r}: finding {number} has no "
                              "fingerprint")
        prints.add(value)
    return Baseline(path, frozenset(prints))


DESCRIPTION = """\
Record the findings of JSON reports (written with --format=json) as a baseline: with the option
baseline=FILE (pytest: --race-baseline=FILE), findings in it are known and fail nothing, so a
run fails only on new ones. Paths are taken relative to the baseline file's directory.
"""


def main(argv):
    """`racewatch baseline REPORT... [-o FILE]`."""
    from racewatch.reports import command, merge, reader
    parser = argparse.ArgumentParser(prog="racewatch baseline", description=DESCRIPTION)
    parser.add_argument("files", nargs="+", metavar="REPORT", help="JSON report files")
    parser.add_argument("-o", "--output", default=DEFAULT,
                        help=f"the baseline file, replaced atomically (default: {DEFAULT})")
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.abspath(args.output))
    try:
        reports = [r for path in args.files for r in reader.read(path, command.warn)]
        entries = [_entry(f.record, _relative(root, f.origin.header))
                   for f in merge.merge(reports)]
        from racewatch.cover import atomicwrite
        atomicwrite.write_bytes(args.output, dumps(entries).encode("utf-8"))
    except reader.ReportError as exc:
        sys.stderr.write(f"racewatch: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"racewatch: {exc.filename or args.output}: {exc.strerror or exc}\n")
        return 1
    sys.stderr.write(f"racewatch: wrote {len({e['fingerprint'] for e in entries})} finding(s) "
                     f"to {args.output}\n")
    return 0

