"""What makes two findings the same: merge keys (same sites) and SARIF fingerprints (no lines)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import hashlib
import json
import re

# Object addresses differ from run to run and process to process; never part of an identity.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
FINGERPRINT = "racewatchFinding/v1"


def scrub(text):
    """`attribute 'n' of Counter object at 0x7f..` -> `attribute 'n' of Counter object`."""
    return _ADDRESS.sub("", text)


def top(stack):
    """The innermost frame, or a placeholder for an empty stack."""
    return stack[0] if stack else {"function": "?", "file": "?", "line": None}


def _where(frame, path, lines):
    place = (path(frame["file"]), frame["function"])
    return (*place, frame["line"] or 0) if lines else place


def _parts(finding, path, lines):
    """The identity of a finding as nested tuples; order-free where the run's timing decides
    the order (which access came first, which lock of a cycle was seen first)."""
    if finding["type"] == "race":
        sides = sorted((side["access"], *_where(top(side["stack"]), path, lines))
                       for side in (finding["access"], finding["previous"]))
        return ("race", scrub(finding["location"]), tuple(sides))
    edges = [(scrub(e["lock"]["description"]),
              _where(top(e["acquired"]["stack"]), path, lines),
              _where(top(e["acquired"]["while_holding"]["stack"]), path, lines))
             for e in finding["cycle"]]
    # A cycle has no first edge: start it at its least edge so every rotation is one key.
    start = edges.index(min(edges)) if edges else 0
    return (finding["type"], tuple(edges[start:] + edges[:start]))


def key(finding):
    """Merge key: the same pair of accesses (kind, file, function, line) on a location of the
    same description, whichever process found it and whichever access came first."""
    return _parts(finding, lambda p: p, lines=True)


def group(finding):
    """Findings of one group are one alert: a race's location and the file, function and line
    of both accesses, whatever each does (one `x += 1` races as read/write and write/write)."""
    if finding["type"] != "race":
        return key(finding)
    sides = sorted(_where(top(side["stack"]), lambda p: p, True)
                   for side in (finding["access"], finding["previous"]))
    return ("race", scrub(finding["location"]), tuple(sides))


def fingerprint(finding, relative):
    """A stable hash for code scanning: relative file, function, access kind and location
    description of both accesses; never line numbers, addresses, pids or thread numbers,
    so an alert survives edits elsewhere in the file and reruns."""
    text = json.dumps(_parts(finding, relative, lines=False))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
