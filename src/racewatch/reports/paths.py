"""File paths in reports: written relative to `strip_path_prefix`, resolved with the header."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os


def resolve(path, header):
    """Where a report's path points: paths were written as the code object named them, less
    `strip_path_prefix`; a relative one is relative to the process's cwd."""
    if not os.path.isabs(path):
        prefix = header.get("strip_path_prefix") or ""
        if prefix and os.path.isabs(prefix + path):
            path = prefix + path
        else:
            path = os.path.join(header.get("cwd") or os.getcwd(), path)
    return os.path.normpath(path)


def absolute(record, header):
    """A copy of `record` with the file of every frame resolved against its report's header."""
    if type(record) is list:
        return [absolute(item, header) for item in record]
    if type(record) is not dict:
        return record
    if "function" in record and type(record.get("file")) is str:
        return dict(record, file=resolve(record["file"], header))
    return {key: absolute(value, header) for key, value in record.items()}
