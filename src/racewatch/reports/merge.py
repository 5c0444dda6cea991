"""Merging the findings of several processes' reports: one per race, counts summed."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch.reports import identity


class Finding:
    """One distinct finding over all reports: its first record, and where and how often."""

    def __init__(self, record, origin, sites, accesses=None):
        self.record = record
        self.origin = origin    # the Report it was first read from (paths resolve against it)
        self.sites = sites      # `file:line` of both sites (races), from a summary if known
        self.accesses = accesses  # what each site does (`write`...), where the summary says
        self.count = 0
        self.processes = 0

    @property
    def type(self):
        return self.record["type"]


def _sites(report, record):
    known = report.sites.get(record.get("id"))
    if known:
        return list(known)
    if record["type"] != "race":
        return None
    tops = [identity.top(record[side]["stack"]) for side in ("previous", "access")]
    return [f"{frame['file']}:{frame['line']}" for frame in tops]


def merge(reports):
    """Distinct findings of all `reports`, in a stable order (by identity key)."""
    found = {}
    for report in reports:
        for record in report.findings:
            k = identity.key(record)
            finding = found.get(k)
            if finding is None:
                finding = found[k] = Finding(record, report, _sites(report, record),
                                             report.accesses.get(record.get("id")))
            finding.count += report.count(record)
            finding.processes += record.get("processes") or 1
    return [found[k] for k in sorted(found, key=repr)]
