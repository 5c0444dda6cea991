"""Pieces shared by race and lock-order inversion reports: paths, frames, thread origins, the
names of mutexes."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch.runtime import threads


def mutex_names(lock_ids):
    """M1, M2, ... for the locks a report names, in order of first mention (as ThreadSanitizer
    numbers a report's mutexes): the same in every run, however many locks the program and
    the libraries it calls took before."""
    names = {}
    for i in lock_ids:
        names.setdefault(i, f"M{len(names) + 1}")
    return names


def thread_origins(tids):
    """(id, description, status, creation stack) of each thread but the main one, by id."""
    origins = []
    for t in sorted(tids):
        info = threads.info(t)
        if t != 0 and info is not None:
            status = "finished" if info.finished else "running"
            origins.append((t, threads.describe(t), status, info.created_at))
    return origins


def frames_text(frames, strip, width):
    return "".join(f"  {func + '()':<{width}} {strip_path(file, strip)}:{line}\n"
                   for func, file, line in frames)


def strip_path(path, prefix):
    return path[len(prefix):] if prefix and path.startswith(prefix) else path
