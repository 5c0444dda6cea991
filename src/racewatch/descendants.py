"""Findings of the processes a top-level racewatch process starts: one directory, a file each.

The first racewatch process of a run (`racewatch run`, `pytest --race`, or the first process
of `python -X race` / PYTHONRACE) makes a directory and names it in the environment; every
racewatch process started under it, however it starts (subprocess, multiprocessing's spawn,
forkserver or fork, os.fork), finds it there. Such a descendant keeps its own exit status,
and each time it reports a finding it rewrites its own file in the directory: a temp file
renamed over the last one, so a reader never sees half of one, writers never share one, and
os._exit or a kill loses nothing already reported. At its end the top process reads them
all: its summary names each process that found something, and its exit status becomes
`exitcode` when it would have been 0.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import marshal
import os
import sys

VARIABLE = "RACEWATCH_TREE"
# marshal's version 4 reads the same under every Python 3.4+: a tree may mix versions.
_FORMAT = 4


class Tree:
    """This process's place in a run: `top` (it made the directory) or a descendant."""

    def __init__(self, path, top):
        self.path = path
        self.top = top
        self._file = None  # this process's file name (a pid can be reused by a later process)
        os.register_at_fork(after_in_child=self._forked)

    @classmethod
    def join(cls):
        """The tree this process was started in, or None."""
        path = os.environ.get(VARIABLE)
        return cls(path, top=False) if path else None

    @classmethod
    def lead(cls):
        """A new tree with this process at its top, named for its children; None if the
        directory cannot be made (the run then ends with each process's own status)."""
        try:
            path = _mkdtemp()
        except OSError:
            return None
        os.environ[VARIABLE] = path
        return cls(path, top=True)

    def _forked(self):
        self.top = False  # a fork child of the top process is one of its descendants
        self._file = None

    def record(self, races, inversions):
        """A descendant's findings so far (counts), replacing what it recorded before."""
        if self.top:
            return
        if self._file is None:
            self._file = f"{os.getpid()}-{os.urandom(4).hex()}"
        data = marshal.dumps({"pid": os.getpid(), "argv": [str(a) for a in sys.argv],
                              "races": races, "lock_order_inversions": inversions}, _FORMAT)
        final = os.path.join(self.path, self._file)
        temp = os.path.join(self.path, f".{self._file}.tmp")
        try:
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, final)
        except OSError:
            pass  # the top process has ended (or its directory is gone): nobody to tell

    def collect(self):
        """The top process's view at its end: each descendant's record, by pid; the
        directory is removed (descendants still running after it have no one to tell)."""
        if not self.top or self.path is None:
            return []
        found = []
        try:
            names = os.listdir(self.path)
        except OSError:
            names = []
        for name in names:
            if name.startswith("."):
                continue  # a write in progress
            try:
                with open(os.path.join(self.path, name), "rb") as f:
                    record = marshal.loads(f.read())
            except (OSError, EOFError, ValueError, TypeError):
                continue
            if type(record) is dict and (record.get("races") or
                                         record.get("lock_order_inversions")):
                found.append(record)
        _remove(self.path)
        self.path = None
        return sorted(found, key=lambda r: r.get("pid", 0))


def _remove(path):
    """shutil.rmtree(path, ignore_errors=True) for the tree's flat directory of files (shutil
    imports bz2, lzma and zlib: a twentieth of a run's start)."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _mkdtemp():
    """tempfile.mkdtemp(prefix="racewatch-tree-"), whose import (shutil, random, bz2,
    lzma...) was a tenth of every run's start: the first place tempfile would choose, tried
    directly; anything unusual (no such directory, a name taken) goes to tempfile itself."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        base = os.environ.get(name)
        if base:
            break
    else:
        base = "/tmp"
    path = os.path.abspath(os.path.join(base, f"racewatch-tree-{os.urandom(8).hex()}"))
    try:
        os.mkdir(path, 0o700)
        return path
    except OSError:
        import tempfile
        return tempfile.mkdtemp(prefix="racewatch-tree-")


def summary_lines(records):
    """The text the top process adds to its summary, one line per descendant."""
    if not records:
        return ""
    lines = [f"racewatch: {len(records)} other process(es) of this run found races:\n"]
    for record in records:
        found = [f"{record['races']} data race(s)"] if record["races"] else []
        if record["lock_order_inversions"]:
            found.append(f"{record['lock_order_inversions']} lock-order inversion(s)")
        lines.append(f"  pid {record['pid']}: {', '.join(found)} in "
                     f"{' '.join(record['argv']) or '(no argv)'}\n")
    return "".join(lines)
