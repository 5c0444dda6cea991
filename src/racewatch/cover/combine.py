"""Adding counts files up: `racewatch cover combine`, and the data every report reads."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import contextlib
import os
import sys

from racewatch.cover import atomicwrite, countsfile


class CombineError(Exception):
    """Nothing was combined; the message says why in one line."""


def inputs(paths, directory):
    """Per-process counts files named by `paths` (files, or directories to search), or found
    in `directory` when no path is given."""
    if not paths:
        return countsfile.per_process_files(directory)
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += countsfile.per_process_files(path)
        else:
            found.append(path)
    return found


def read_all(files, warn):
    """(Counts of the readable files added up, the files read); unreadable files are named by
    `warn` and left alone. Mismatch if two files cannot be added."""
    total = None
    used = []
    for path in files:
        try:
            counts = countsfile.read(path)
        except countsfile.BadFile as exc:
            warn(f"skipping {os.path.relpath(path)}: {exc} (left in place)")
            continue
        if total is None:
            total = countsfile.Counts(counts.mode)
        total.add(counts)
        used.append(path)
    return total, used


def combine(paths=(), output=None, keep=False, append=False, warn=None):
    """Write the sum of the inputs to `output` (temp, fsync, rename), then delete the inputs
    that went into it (unless `keep`). Returns (output path, number of files combined)."""
    warn = warn or _stderr
    output = output or countsfile.COMBINED
    directory = os.path.dirname(os.path.abspath(output))
    with _locked(directory):
        files = [f for f in inputs(paths, os.getcwd())
                 if os.path.abspath(f) != os.path.abspath(output)]
        previous = None
        if append and os.path.exists(output):
            try:
                previous = countsfile.read(output)
            except countsfile.BadFile as exc:
                raise CombineError(f"cannot append to {output}: {exc}") from None
            # files kept by `combine --keep` are in it already: adding them again doubles
            files = [f for f in files if os.path.basename(f) not in previous.inputs]
        try:
            total, used = read_all(files, warn)
            if previous is not None:
                if total is not None:
                    previous.add(total)
                total = previous
        except countsfile.Mismatch as exc:
            raise CombineError(f"{exc}; nothing was combined") from None
        if not used:
            raise CombineError("no counts files to combine" if not files else
                               "no readable counts files to combine")
        names = sorted(total.inputs | {os.path.basename(f) for f in used})
        atomicwrite.write_bytes(output, total.to_json(combined_from=len(names), inputs=names))
        if not keep:
            for path in used:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    return output, len(used)


def load(data=None, warn=None):
    """The counts reports show: `data` if named, else the combined file of this directory if
    there is one, else the per-process files added up in memory (nothing is deleted)."""
    warn = warn or _stderr
    if data is not None or os.path.exists(countsfile.COMBINED):
        path = data or countsfile.COMBINED
        try:
            counts = countsfile.read(path)
        except countsfile.BadFile as exc:
            raise CombineError(f"cannot read {path}: {exc}") from None
        if data is None:
            loose = [f for f in countsfile.per_process_files(os.getcwd())
                     if os.path.basename(f) not in counts.inputs]
            if loose:
                warn(f"{len(loose)} counts file(s) not in {path}: run "
                     "`racewatch cover combine --append` to add them")
        return counts
    try:
        total, _ = read_all(countsfile.per_process_files(os.getcwd()), warn)
    except countsfile.Mismatch as exc:
        raise CombineError(str(exc)) from None
    if total is None:
        raise CombineError("no coverage counts here (run a program with --cover first)")
    return total


@contextlib.contextmanager
def _locked(directory):
    """Two combines at once in one directory take turns (each sees the other's result)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; combines are rare enough
        yield
        return
    path = os.path.join(directory, countsfile.STEM + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _stderr(message):
    sys.stderr.write(f"racewatch: {message}\n")
