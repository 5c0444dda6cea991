"""SARIF 2.1.0 from merged findings, for GitHub code scanning: one result per finding."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import pathlib
import urllib.parse

from racewatch.reports import identity
from racewatch.reports.paths import resolve

SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
ROOT_ID = "%SRCROOT%"

RULES = [
    {"id": "data-race", "name": "DataRace",
     "shortDescription": {"text": "Data race"},
     "fullDescription": {"text": "Two threads accessed the same location, at least one of them "
                                 "writing, and no synchronization ordered the two accesses."},
     "help": {"text": "Protect the location with one lock held at both accesses, or hand it "
                      "over through a synchronizing primitive (queue, event, join)."},
     "defaultConfiguration": {"level": "error"},
     "properties": {"tags": ["concurrency", "reliability", "data-race"],
                    "precision": "high"}},
    {"id": "lock-order-inversion", "name": "LockOrderInversion",
     "shortDescription": {"text": "Lock-order inversion (potential deadlock)"},
     "fullDescription": {"text": "Locks were acquired in orders that form a cycle: threads "
                                 "taking them in those orders can deadlock."},
     "help": {"text": "Acquire the locks of the cycle in one global order everywhere."},
     "defaultConfiguration": {"level": "warning"},
     "properties": {"tags": ["concurrency", "reliability", "deadlock"],
                    "precision": "high"}},
]
_RULE_INDEX = {rule["id"]: i for i, rule in enumerate(RULES)}
_RULE_OF = {"race": "data-race", "lock-order-inversion": "lock-order-inversion"}


class Paths:
    """File paths of a report, made relative to the repository root where they lie under it."""

    def __init__(self, root):
        self.root = os.path.realpath(root)

    def relative(self, path, header):
        """`pkg/mod.py` under the root, else None."""
        absolute = os.path.realpath(resolve(path, header))
        rel = os.path.relpath(absolute, self.root)
        return None if rel == ".." or rel.startswith(".." + os.sep) else rel.replace(os.sep, "/")

    def artifact(self, path, header):
        rel = self.relative(path, header)
        if rel is not None:
            return {"uri": urllib.parse.quote(rel), "uriBaseId": ROOT_ID}
        return {"uri": pathlib.Path(resolve(path, header)).as_uri()}

    def stable(self, header):
        """The path a fingerprint hashes: relative under the root, else as written."""
        return lambda path: self.relative(path, header) or path


def _location(paths, header, frame, message=None, ident=None):
    physical = {"artifactLocation": paths.artifact(frame["file"], header)}
    if frame.get("line") and frame["line"] > 0:
        physical["region"] = {"startLine": frame["line"]}
    location = {"physicalLocation": physical}
    if ident is not None:
        location["id"] = ident
    if message:
        location["message"] = {"text": message}
    return location


def _stack(paths, header, message, frames):
    return {"message": {"text": message},
            "frames": [{"location": _location(paths, header, f, f"{f['function']}()")}
                       for f in frames]}


def _race_result(finding, paths):
    race, header = finding.record, finding.origin.header
    cur, prev = race["access"], race["previous"]
    where = identity.scrub(race["location"])
    related = [_location(paths, header, identity.top(prev["stack"]),
                         f"previous {prev['access']} by {prev['thread']}", 1)]
    for origin in race.get("threads", []):
        if origin["created_at"]:
            related.append(_location(paths, header, origin["created_at"][0],
                                     f"{origin['thread']} created here", len(related) + 1))
    message = (f"Data race on {where}: {cur['access']} by {cur['thread']} races with the "
               f"[previous {prev['access']}](1) by {prev['thread']}.")
    return {
        "message": {"text": message},
        "locations": [_location(paths, header, identity.top(cur["stack"]),
                                f"{cur['access']} by {cur['thread']}")],
        "relatedLocations": related,
        "stacks": [_stack(paths, header, f"{cur['access']} by {cur['thread']}", cur["stack"]),
                   _stack(paths, header, f"previous {prev['access']} by {prev['thread']}",
                          prev["stack"])],
    }


def _inversion_result(finding, paths):
    cycle, header = finding.record["cycle"], finding.origin.header
    locks = " => ".join(identity.scrub(e["lock"]["description"]) for e in cycle)
    first = cycle[0]["acquired"]
    related = []
    for edge in cycle:
        acquired = edge["acquired"]
        lock = identity.scrub(edge["lock"]["description"])
        held = identity.scrub(acquired["while_holding"]["description"])
        related.append(_location(paths, header, identity.top(acquired["stack"]),
                                 f"{lock} acquired by {acquired['thread']} while holding {held}",
                                 len(related) + 1))
        if edge["lock"]["created_at"]:
            related.append(_location(paths, header, edge["lock"]["created_at"][0],
                                     f"{lock} created here", len(related) + 1))
    return {
        "message": {"text": f"Lock-order inversion (potential deadlock): the locks {locks} "
                            "are acquired in a cycle."},
        "locations": [_location(paths, header, identity.top(first["stack"]),
                                f"acquired by {first['thread']}")],
        "relatedLocations": related,
        "stacks": [_stack(paths, header, f"{identity.scrub(e['lock']['description'])} "
                                         f"acquired by {e['acquired']['thread']}",
                          e["acquired"]["stack"]) for e in cycle],
    }


def groups(findings):
    """Merged findings in groups of one alert each (identity.group), in order."""
    found = {}
    for finding in findings:
        found.setdefault(identity.group(finding.record), []).append(finding)
    return list(found.values())


def _accesses(finding):
    return [finding.record["access"]["access"], finding.record["previous"]["access"]]


def sarif_log(findings, root, version):
    """The SARIF log (a dict) of merged findings, one result per group (the read/write and
    write/write races of one `x += 1` are one alert, told by the first of them);
    paths relative to `root` use %SRCROOT%."""
    paths = Paths(root)
    results = []
    for members in groups(findings):
        finding = members[0]
        rule = _RULE_OF[finding.type]
        make = _race_result if finding.type == "race" else _inversion_result
        result = {"ruleId": rule, "ruleIndex": _RULE_INDEX[rule],
                  "level": RULES[_RULE_INDEX[rule]]["defaultConfiguration"]["level"],
                  **make(finding, paths)}
        result["partialFingerprints"] = {
            identity.FINGERPRINT: identity.fingerprint(finding.record,
                                                       paths.stable(finding.origin.header))}
        result["properties"] = {"count": max(m.count for m in members),
                                "processes": max(m.processes for m in members)}
        if finding.type == "race":  # every pair of the group: (this access, previous)
            result["properties"]["accesses"] = [_accesses(m) for m in members]
        results.append(result)
    root_uri = pathlib.Path(paths.root).as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "racewatch", "version": version,
                                "semanticVersion": version, "rules": RULES}},
            "originalUriBaseIds": {ROOT_ID: {"uri": root_uri}},
            "results": results,
        }],
    }
