"""Source text for reports, only when it is the version that was measured (same sha256)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import tokenize

from racewatch.cover import countsfile


def read(path, digest, warn):
    """The file's lines, or None (after a warning) when it is gone or has changed since."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        warn(f"{path}: source not readable ({exc.strerror}); showing counts only")
        return None
    if countsfile.digest(data) != digest:
        warn(f"{path}: source changed since it was measured; showing counts only")
        return None
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
        return data.decode(encoding).splitlines()
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace").splitlines()
