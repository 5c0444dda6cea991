"""The counts file: hit counts per line, with the source hash of each file; read, write, add."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import glob
import json
import os
import string
import sys
import time

import racewatch

FORMAT = "racewatch-cover/1"
MODES = ("set", "count", "atomic")
# Never named `.coverage.*`: coverage.py would try every such file as its own data and warn.
STEM = ".racewatch-cover"
COMBINED = STEM + ".json"  # what `racewatch cover combine` writes; one per directory
PER_PROCESS = STEM + ".*.json"  # what each measured process writes (glob)


class BadFile(Exception):
    """A counts file that cannot be used; the message says why, in a few words."""


class Mismatch(Exception):
    """Two inputs that must not be added: different sources of one file, or modes."""


def digest(data):
    """The sha256 hex digest that names a source version."""
    try:  # the builtin module: hashlib would load OpenSSL into every measured process
        from _sha2 import sha256
    except ImportError:
        try:
            from _sha256 import sha256
        except ImportError:  # pragma: no cover - every CPython build has one of them
            from hashlib import sha256
    return sha256(data).hexdigest()


def file_digest(path):
    """The digest of a source file as it is now (zeros when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return digest(f.read())
    except OSError:
        return "0" * 64


def per_process_files(directory):
    return sorted(glob.glob(os.path.join(glob.escape(directory), PER_PROCESS)))


class Counts:
    """Counts of one run or of several added up: `files[path] = (sha256, {line: hits})`."""

    def __init__(self, mode, files=None, origin=None, inputs=()):
        self.mode = mode
        self.files = files if files is not None else {}
        self.origin = {path: origin for path in self.files} if origin else {}
        self.inputs = set(inputs)  # names of the per-process files a combined file holds

    def add(self, other):
        """Add `other` in; Mismatch (nothing changed) if the two cannot be added."""
        if other.mode != self.mode:
            raise Mismatch(f"mode {other.mode!r} in {other.describe()} but {self.mode!r} in "
                           f"{self.describe()}: combine runs of one --cover mode only")
        for path, (digest, _) in other.files.items():
            mine = self.files.get(path)
            if mine is not None and mine[0] != digest:
                raise Mismatch(
                    f"{path} was measured with two different sources (sha256 {mine[0][:12]}… "
                    f"in {self.origin.get(path, 'the combined data')}, {digest[:12]}… in "
                    f"{other.origin.get(path, 'another file')}): combine runs of one version "
                    "of the code only")
        for path, (digest, lines) in other.files.items():
            mine = self.files.setdefault(path, (digest, {}))[1]
            self.origin.setdefault(path, other.origin.get(path))
            for line, hits in lines.items():
                if self.mode == "set":
                    mine[line] = max(mine.get(line, 0), min(hits, 1))
                else:
                    mine[line] = mine.get(line, 0) + hits

    def describe(self):
        origins = {o for o in self.origin.values() if o}
        return ", ".join(sorted(origins)) if origins else "the combined data"

    def to_json(self, **meta):
        record = {"format": FORMAT, "mode": self.mode, "racewatch": racewatch.__version__,
                  "python": ".".join(map(str, sys.version_info[:3])),
                  "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **meta,
                  "files": {path: {"sha256": digest,
                                   "lines": {str(line): hits for line, hits in sorted(lines.items())}}
                            for path, (digest, lines) in sorted(self.files.items())}}
        return json.dumps(record, indent=1).encode() + b"\n"


def read(path):
    """The Counts in the file at `path`; BadFile if it is not a complete counts file."""
    try:
        with open(path, "rb") as f:
            record = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise BadFile(exc.strerror or str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadFile(f"not a racewatch counts file ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BadFile(f"not a {FORMAT} file")
    mode = record.get("mode")
    if mode not in MODES:
        raise BadFile(f"unknown mode {mode!r}")
    files = {}
    entries = record.get("files")
    if not isinstance(entries, dict):
        raise BadFile("no 'files' table")
    for name, entry in entries.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        lines = entry.get("lines") if isinstance(entry, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64
                and set(digest) <= set(string.hexdigits) and isinstance(lines, dict)):
            raise BadFile(f"malformed entry for {name}")
        try:
            parsed = {int(line): hits for line, hits in lines.items()}
        except ValueError:
            raise BadFile(f"malformed line number for {name}") from None
        if not all(type(hits) is int and hits >= 0 for hits in parsed.values()):
            raise BadFile(f"malformed hit count for {name}")
        files[name] = (digest, parsed)
    inputs = record.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(name, str) for name in inputs):
        raise BadFile("malformed 'inputs' list")
    return Counts(mode, files, origin=os.path.basename(path), inputs=inputs)
