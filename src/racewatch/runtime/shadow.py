"""Per-location FastTrack state of the Python twin, and its lifetime (dies with its object)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import struct
import sys
import weakref
import zlib

from racewatch.runtime.guard import guard

try:  # the C runtime's notice of deaths of objects that cannot be weakly referenced
    from racewatch.runtime._fast import deaths as _deaths, watch_death as _watch_death
except ImportError:
    _deaths = _watch_death = None

# Sweep the strongly held records once this many were created since the last sweep.
SWEEP_EVERY = 4096


class Access:
    """One remembered access: its epoch (atomic bit included), site, lockset and stack."""

    __slots__ = ("epoch", "site", "lockset", "stack")

    def __init__(self, epoch, site, lockset, stack):
        self.epoch = epoch
        self.site = site
        self.lockset = lockset
        self.stack = stack


class Cell:
    """FastTrack state of one location: last write, and last read (an epoch, or per-thread
    reads once the location is read-shared)."""

    __slots__ = ("write", "read", "shared", "raced")

    def __init__(self):
        self.write = None   # Access or None
        self.read = None    # Access or None, while reads are totally ordered
        self.shared = None  # {tid: Access} once concurrent reads were seen
        self.raced = False  # once a race was found here, other sites are checked too


class Record:
    """The cells of one object, and what keeps the record tied to the object's life."""

    __slots__ = ("cells", "ref", "ignore", "__weakref__")

    def __init__(self, ref, ignore):
        self.cells = {}
        self.ref = ref
        self.ignore = ignore


class Released:
    """What a cell keeps of a key deleted from its dict, holding no reference to it (as the
    dict holds none): its type and two independent hashes of its value. A live key equal to
    it (compared by value: a builtin scalar or a tuple of them) finds the same cell."""

    __slots__ = ("type", "hash", "hash2")

    def __init__(self, key):
        self.type, self.hash, self.hash2 = _kind(key), hash(key), _hash2(key)

    def __hash__(self):
        return self.hash

    def __eq__(self, other):
        if type(other) is Released:
            return (self.type, self.hash, self.hash2) == (other.type, other.hash, other.hash2)
        return _kind(other) is self.type and hash(other) == self.hash and \
            _hash2(other) == self.hash2


_NUMBERS = (int, bool, float)


def _kind(key):
    """Numbers equal in value are one dict key (1, 1.0, True): one kind."""
    return int if type(key) in _NUMBERS else type(key)


def _hash2(key):
    """A hash of a builtin scalar (or a tuple of them) independent of Python's own."""
    if type(key) is tuple:
        return zlib.crc32(b"".join(_hash2(k).to_bytes(4, "little") for k in key))
    if type(key) is bytes:
        return zlib.crc32(key)
    if type(key) is float:
        if key.is_integer():
            key = int(key)
        else:
            return zlib.crc32(struct.pack("<d", key))
    if type(key) is bool:
        key = int(key)
    return zlib.crc32(repr(key).encode("utf-8", "surrogatepass"))


def release_key(cells, key):
    """Key `key` of this record's dict was deleted: its cell lets go of it. Returns what the
    cell held, for the caller to drop with no lock held (it may be the last reference)."""
    if key not in cells:
        return None
    from racewatch.runtime.locations import Identity
    if type(key) is Identity:
        if key.weak:
            return None  # a weakref keeps nothing alive, and still tells this object apart
        held = next(k for k in cells if k == key)  # the cell's own Identity, not this probe's
        del cells[key]  # an object compared by identity whose address may be reused: forgotten
        return held
    cells[Released(key)] = cells.pop(key)
    return None  # a builtin scalar: releasing it runs nothing


def forget_dead(*tables):
    """Drop the records of watched objects that died from every table (call before looking
    anything up). The C runtime keeps one list of deaths, so all tables share one drain."""
    for key in (_deaths() if _deaths is not None else None) or ():
        for table in tables:
            table.forget(key)


class LifetimeTable:
    """Maps live objects to records (anything with a `ref` slot). A record goes when its
    object dies: a weakref callback for weak-referenceable objects; otherwise the record holds
    the object and a periodic sweep drops records whose object nobody else references."""

    def __init__(self, on_death=None):
        self.records = {}
        self.strong = []  # ids of records that hold their object
        self.created_strong = 0
        self.on_death = on_death  # on_death(record) when its object died (not on clear)

    def get(self, obj):
        return self.records.get(id(obj))

    def create(self, obj, make):
        """`make(ref)` builds the record; creating a weakref may run GC (and so user code), so
        call this with no lock held, or under the guard (collections paused), and insert the
        result with `insert`. Objects that cannot be
        weakly referenced are watched through the C runtime's dealloc hooks where it is built
        (then the record holds no reference at all), else held strongly until a sweep."""
        key = id(obj)
        if _watch_death is not None and _watch_death(obj):  # no weakref to show through it
            return key, make(None), False
        try:
            ref = weakref.ref(obj, lambda _, key=key, died=self._died: died(key))
        except TypeError:
            return key, make(obj), True
        return key, make(ref), False

    def forget(self, key):
        """Drop the record at `key` if its object was watched (the C runtime saw it die)."""
        record = self.records.get(key)
        if record is not None and record.ref is None:
            del self.records[key]
            if self.on_death is not None:
                self.on_death(record)

    def insert(self, key, record, strong):
        """Insert unless another thread got there first; returns the record in the table."""
        existing = self.records.get(key)
        if existing is not None:
            return existing
        self.records[key] = record
        if strong:
            self.strong.append(key)
            self.created_strong += 1
        return record

    def _died(self, key, _ref_type=weakref.ref, _guard=guard):
        # bound names only: at interpreter shutdown this module's globals may already be gone
        with _guard:  # not between another thread's lookup and insert
            record = self.records.get(key)
            if record is not None and type(record.ref) is _ref_type and record.ref() is None:
                del self.records[key]
                if self.on_death is not None:
                    self.on_death(record)

    def sweep_due(self):
        return self.created_strong >= SWEEP_EVERY

    def sweep(self):
        """Drop strongly held records whose object only the table still references.

        Returns the objects released, for the caller to drop outside its lock (dropping them
        can run finalizers)."""
        self.created_strong = 0
        released, kept = [], []
        for key in self.strong:
            record = self.records.get(key)
            if record is None or type(record.ref) is weakref.ref:
                continue
            # Two references when only the record holds it: the record's, getrefcount's argument.
            if sys.getrefcount(record.ref) <= 2:
                released.append(record.ref)
                del self.records[key]
                if self.on_death is not None:
                    self.on_death(record)
            else:
                kept.append(key)
        self.strong = kept
        return released

    def clear(self):
        self.records.clear()
        self.strong.clear()
        self.created_strong = 0
