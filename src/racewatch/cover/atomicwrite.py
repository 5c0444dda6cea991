"""Crash-safe file writes: a temp file in the same directory, fsync, rename, fsync the directory."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import secrets
import time

# Temp files start with this, so no reader's pattern (`.coverage.*`, `.racewatch-cover.*.json`)
# ever matches a file that is still being written.
TEMP_PREFIX = ".rwtmp-"
CHUNK = 1 << 16

# Test hook: with RACEWATCH_COVER_TEST_PAUSE=PATH, the first write of a file that has at least
# two chunks creates PATH after its first chunk and stops there, so a test can kill the
# process mid-write without guessing at timing.
_PAUSE = "RACEWATCH_COVER_TEST_PAUSE"


def temp_path(path):
    directory, name = os.path.split(path)
    return os.path.join(directory, f"{TEMP_PREFIX}{name}.{secrets.token_hex(4)}")


def write_bytes(path, data):
    """Replace `path` with `data` all at once: readers see the old file or the new one."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            for start in range(0, len(data), CHUNK):
                f.write(data[start:start + CHUNK])
                if start == 0 and len(data) > CHUNK:
                    _maybe_pause(f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def publish(tmp, path):
    """Rename a complete, fsynced temp file over `path`, then make the rename durable."""
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(path) or ".")


def fsync_file(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(tmp):
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _maybe_pause(f):
    marker = os.environ.get(_PAUSE)
    if not marker:
        return
    f.flush()
    os.environ.pop(_PAUSE, None)  # once per process
    with open(marker, "w") as m:
        m.write(str(os.getpid()))
    while True:  # the test kills us here
        time.sleep(3600)
