"""racewatch's own .pyc files: own cache tag, atomic writes, silently optional."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import importlib.util
import marshal
import os
import sys
import threading
from types import CodeType

import racewatch
from racewatch import env

try:  # the builtin blake2: hashlib would load OpenSSL (4 MB) into every racewatch process
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - every CPython build has _blake2
    from hashlib import blake2b

# File layout: MAGIC, Python's own magic, fingerprint (8), source mtime_ns (8), source size (8),
# blake2b-16 digest of the payload, payload = marshal((code, site records, layout)).
MAGIC = b"RWc\x01"
_PY_MAGIC = importlib.util.MAGIC_NUMBER
_HEADER = len(MAGIC) + len(_PY_MAGIC) + 8 + 8 + 8 + 16

# Counters a test can read: how often the cache answered, missed, or could not be written.
STATS = {"hit": 0, "miss": 0, "write": 0, "write_failed": 0}


def fingerprint(*parts):
    """8 bytes naming what produced the rewritten code: racewatch's rewriter and options."""
    digest = blake2b(digest_size=8)
    digest.update(racewatch.__version__.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):  # any change to the rewriter invalidates old caches
            with open(os.path.join(here, name), "rb") as f:
                digest.update(f.read())
    for part in parts:
        digest.update(repr(part).encode())
    return digest.digest()


def cache_path(source_path, fp):
    """Where the rewritten code of `source_path` lives, or None if this Python has no caches."""
    if env.CACHE_TAG is None:
        return None
    try:
        standard = importlib.util.cache_from_source(source_path)
    except (NotImplementedError, ValueError):
        return None
    stem = os.path.basename(source_path).rpartition(".")[0] or os.path.basename(source_path)
    return os.path.join(os.path.dirname(standard),
                        f"{stem}.{env.CACHE_TAG}-racewatch-{fp.hex()}.pyc")


def source_stamp(source_path):
    """Taken before the source is read, so a later edit can only cause a miss, never staleness."""
    st = os.stat(source_path)
    return st.st_mtime_ns.to_bytes(8, "little", signed=True) + st.st_size.to_bytes(8, "little")


def load(source_path, fp, stamp):
    """The cached `(code, records, layout)` for the source with this stamp, or None."""
    path = cache_path(source_path, fp)
    entry = None
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = f.read()
            entry = _decode(data, fp, stamp)
        except (OSError, ValueError, EOFError, TypeError):
            entry = None
    STATS["hit" if entry is not None else "miss"] += 1
    return entry


def _decode(data, fp, stamp):
    prefix = MAGIC + _PY_MAGIC + fp + stamp
    if len(data) < _HEADER or not data.startswith(prefix):
        return None
    digest, payload = data[len(prefix):_HEADER], data[_HEADER:]
    if blake2b(payload, digest_size=16).digest() != digest:
        return None  # truncated or corrupted: never hand marshal bytes we did not write
    entry = marshal.loads(payload)
    if (type(entry) is not tuple or len(entry) != 3 or type(entry[0]) is not CodeType
            or type(entry[1]) is not tuple or type(entry[2]) is not tuple):
        return None
    return entry


def store(source_path, fp, stamp, entry):
    """Write the entry atomically (temp file, then rename); any failure just skips caching."""
    if sys.dont_write_bytecode:
        return
    path = cache_path(source_path, fp)
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    try:
        payload = marshal.dumps(entry)
        data = (MAGIC + _PY_MAGIC + fp + stamp
                + blake2b(payload, digest_size=16).digest() + payload)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        STATS["write"] += 1
    except (OSError, ValueError):  # read-only dir, __pycache__ is a file, full disk, ...
        STATS["write_failed"] += 1
        try:
            os.unlink(tmp)
        except OSError:
            pass
