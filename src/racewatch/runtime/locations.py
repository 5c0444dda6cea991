"""Where a probe's access lands, for the Python twin (`fast/locations.c` mirrors it): the locations.

A location is (owner, key): an attribute (object, name), a global (module dict, name), a closure
cell (cell, name), a dict key (dict, key), a list/deque/bytearray index, a container's shape
(container, SHAPE), and the "any item" locations that bulk reads read in one check: a dict's
values (dict, ITEMS), a list-like's items by blocks of BLOCK (list, block(index)), which every
item write also writes, atomically (so item writes never race with each other through them).
`resolve` turns one probe into the (owner, key, is_write, atomic) accesses it stands for, and
never runs user code: keys whose hashing could (anything but builtin scalars and tuples of
them) are told apart by identity.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import array
import collections
import gc
import weakref
from types import ModuleType

from racewatch.runtime import sitekinds as K
from racewatch.runtime import attributes, superattr


class _Shape:
    """The key of a container's shape: its set of keys, its length and order."""
    __slots__ = ()

    def __repr__(self):
        return "SHAPE"


SHAPE = _Shape()


class _Items:
    """The key of a dict's values, all of them: what reading them in bulk reads."""
    __slots__ = ()

    def __repr__(self):
        return "ITEMS"


ITEMS = _Items()

# A list-like's items come in blocks of this many, each an "any item" location: bulk reads
# read a block where they cover it whole, an item write writes its item's block.
BLOCK = 16


def block(index):
    """The key of the block of a list-like's item `index`: a negative int (indices are not)."""
    return -(index // BLOCK + 1)


class Identity:
    """A dict key compared by identity, because comparing it by value could run user code.
    Held weakly where it can be: a shadow cell must not keep the program's object alive."""
    __slots__ = ("id", "ref")

    def __init__(self, obj):
        self.id = id(obj)
        try:
            self.ref = weakref.ref(obj)
        except TypeError:
            self.ref = lambda obj=obj: obj

    @property
    def obj(self):
        return self.ref()

    @property
    def weak(self):
        return type(self.ref) is weakref.ref

    def __hash__(self):
        return self.id

    def __eq__(self, other):
        # a dead key's address may be reused by a new key: then they are not the same
        return type(other) is Identity and other.id == self.id and self.ref() is other.ref()


_SAFE = (str, int, float, bool, bytes, type(None))
_HEAPTYPE = 1 << 9
_IMMUTABLE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE
_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_KEYS_VIEW = type({}.keys())
_SEQUENCES = ("list", "deque", "bytearray")
_DEQUE = collections.deque
_PROXIES = (weakref.ProxyType, weakref.CallableProxyType)
try:  # Python cannot reach a proxy's referent without running the referent's own code
    from racewatch.runtime._fast import referent as _referent
except ImportError:
    _referent = None
_skip_types = {}  # type -> True when attribute accesses on its instances cannot race


SAFE_DEPTH = 32  # tuples nested deeper are compared by identity (as in fast/record.c)


def _safe(key, depth=0):
    tp = type(key)
    if tp in _SAFE:
        return True
    return tp is tuple and depth < SAFE_DEPTH and all(_safe(k, depth + 1) for k in key)


def canonical(key):
    return key if _safe(key) else Identity(key)


def container_kind(obj):
    """'dict', 'list', 'set', 'deque', 'bytearray' for builtin containers (and subclasses that
    keep the builtin item access), else None: other types are seen through their own code.
    Tested on the type only: isinstance() could read obj.__class__ through user code. A
    frozenset is never written, so nothing about it can race."""
    tp = type(obj)
    if issubclass(tp, dict):
        return "dict" if tp.__getitem__ is dict.__getitem__ else None
    if issubclass(tp, list):
        return "list" if tp.__getitem__ is list.__getitem__ else None
    if issubclass(tp, set):
        return "set"
    if issubclass(tp, _DEQUE):
        return "deque"
    if issubclass(tp, bytearray):
        return "bytearray"
    return None


def _shape_owner(obj):
    """The container whose shape reading `obj` reads (a dict view reads its dict)."""
    if issubclass(type(obj), _DICT_VIEWS):
        # view.mapping is a read-only proxy; the dict itself is what the view refers to
        return next((r for r in gc.get_referents(obj) if isinstance(r, dict)), None)
    return obj if container_kind(obj) else None


_VALUES_VIEW = type({}.values())
_BUFFERS = (bytes, bytearray, memoryview, array.array)


def _eq_family(obj):
    """The family of builtin comparison `obj` takes part in (as in fast/locations.c). A builtin
    container's `==` reads its shape and items only against an operand of its own family (a
    list with a list, a set or a dict's keys/items view with any set or such view, a bytearray
    with a bytes-like); against anything else it returns NotImplemented without looking, and the
    other operand's own __eq__, if it has one, reads what it reads through its own probes."""
    tp = type(obj)
    if issubclass(tp, _DICT_VIEWS):
        return None if issubclass(tp, _VALUES_VIEW) else set  # a values view: by identity
    if issubclass(tp, (set, frozenset)):
        return set
    for family in (list, dict, _DEQUE):
        if issubclass(tp, family):
            return family
    # the builtin buffers (Python has no test for the buffer protocol that runs no user code)
    return bytes if issubclass(tp, _BUFFERS) else None


def _attr_owner(obj):
    tp = type(obj)
    if tp in _PROXIES:
        obj = _referent(obj) if _referent is not None else None
        if obj is None:
            return None
        tp = type(obj)
    if tp is ModuleType:
        return obj.__dict__  # a module's attribute is its global
    if tp is super:
        return None
    skip = _skip_types.get(tp)
    if skip is None:  # a static or immutable type without a __dict__: nothing can be rebound
        skip = _skip_types[tp] = (not tp.__flags__ & _HEAPTYPE or tp.__flags__ & _IMMUTABLE) \
            and not tp.__dictoffset__
    return None if skip else obj


def _builtin_len(container):
    """The length of a list, bytearray or deque, without a subclass's own __len__ (None: not
    one of them)."""
    for base in (list, bytearray, _DEQUE):
        if issubclass(type(container), base):
            return base.__len__(container)
    return None


def _attribute(obj, key, is_write):
    """The accesses of attribute `key` of `obj` (a write covers a delete), by the plan of the
    class's attribute (attributes.py)."""
    if type(obj) is super:
        owner = superattr.owner(obj, key)
        return [(owner, key, is_write, 0)] if owner is not None else []
    owner = _attr_owner(obj)
    if owner is None:
        return []
    tp = type(owner)
    if not tp.__flags__ & _HEAPTYPE or type(key) is not str:
        return [(owner, key, is_write, 0)]
    read, write, klass = attributes.plan(tp, key)
    how = write if is_write else read
    if how == attributes.NOTHING:
        return []
    if how == attributes.CLASS:
        return [(klass, key, False, 0)]
    accesses = [(owner, key, is_write, 0)]
    if how == attributes.VALUE and not attributes.shadowed(owner, key):
        accesses.append((klass, key, False, 0))
    elif how == attributes.DICT:
        attributes.note_dict(owner)
    return accesses


def _index(container, key):
    if type(key) is not int:
        return None
    if key < 0:
        length = _builtin_len(container)
        if length is None:
            return None
        key += length
    return key


# A slice assignment covers its items; at most this many are recorded (the shape always is).
SLICE_ITEMS = 16


def _bulk(obj, values=False):
    """Reading all of a container's elements at once (iterating it, sum(), list(), a + b...):
    its shape, and its items: a list-like's blocks, a dict's values where they are what is read
    (a values or items view; `values`), nothing more for keys and sets."""
    tp = type(obj)
    if issubclass(tp, _DICT_VIEWS):
        owner = _shape_owner(obj)
        if owner is None:
            return []
        return [(owner, SHAPE, False, 0)] + ([] if issubclass(tp, _KEYS_VIEW) else
                                             [(owner, ITEMS, False, 0)])
    kind = container_kind(obj)
    if kind is None:
        return []
    accesses = [(obj, SHAPE, False, 0)]
    if kind == "dict" and values:
        accesses.append((obj, ITEMS, False, 0))
    elif kind in _SEQUENCES:
        length = _builtin_len(obj)
        accesses += [(obj, block(i), False, 0) for i in range(0, length, BLOCK)]
    return accesses


def _slice(obj, bounds, is_write):
    """A slice read or assignment: the shape, and the items it covers. A read covers them all:
    the blocks it covers whole, the others one by one; an assignment its first SLICE_ITEMS."""
    if type(bounds) is tuple:  # 3.12+ probes pass (start, stop)
        bounds = slice(*bounds)
    accesses = [(obj, SHAPE, is_write, 0)]
    if not all(b is None or type(b) is int for b in (bounds.start, bounds.stop, bounds.step)):
        return accesses
    length = _builtin_len(obj)
    covered = range(*bounds.indices(length)) if length is not None else range(0)
    if is_write:
        return accesses + [(obj, i, True, 0) for i in covered[:SLICE_ITEMS]]
    if covered.step != 1:
        return accesses + [(obj, i, False, 0) for i in covered]
    i, stop = covered.start, covered.stop
    while i < stop:
        if i % BLOCK == 0 and i + BLOCK <= stop:
            accesses.append((obj, block(i), False, 0))
            i += BLOCK
        else:
            accesses.append((obj, i, False, 0))
            i += 1
    return accesses


def _concat(left, right, inplace):
    """`left + right` of two list-likes reads both in bulk; `left += right` extends a list-like
    left (an atomic write of its shape, as `extend` is) with everything right holds. Other
    operands run their own code, or raise."""
    if container_kind(left) not in _SEQUENCES:
        return []
    if inplace:
        return [(left, SHAPE, True, 1)] + _bulk(right)
    return _bulk(left) + (_bulk(right) if container_kind(right) in _SEQUENCES else [])


def _item(obj, key, is_write, delete):
    kind = container_kind(obj)
    if kind is None or kind == "set":
        return []
    if type(key) is slice:
        return _slice(obj, key, is_write) if kind != "dict" else []
    if kind == "dict":
        owner = attributes.alias_owner(obj) if type(key) is str else None
        if owner is not None:  # obj.__dict__[k] is obj.k
            return [(owner, key, is_write, 0)]
        ckey = canonical(key)
        accesses = [(obj, ckey, is_write, 0)]
        if delete:  # the dict lets go of the key: so does its cell (the 5th item)
            accesses = [(obj, ckey, is_write, 0, True), (obj, SHAPE, True, 0)]
        elif is_write and type(ckey) is not Identity and key not in obj:
            # a new key changes the shape, atomically (CPython documents `D[x] = y` as atomic):
            # inserts of distinct keys never race, an insert races with len() or iteration
            accesses.append((obj, SHAPE, True, 1))
        elif (not is_write and issubclass(type(obj), collections.defaultdict)
              and type(ckey) is not Identity and key not in obj):
            accesses.append((obj, SHAPE, True, 0))  # __missing__ will insert it
        if is_write and not delete:
            accesses.append((obj, ITEMS, True, 1))  # a value changes: bulk reads of values see it
        return accesses
    index = _index(obj, key)
    if index is None:
        return []
    if delete:
        return [(obj, index, True, 0), (obj, SHAPE, True, 0)]
    if is_write:
        return [(obj, index, True, 0), (obj, block(index), True, 1)]
    return [(obj, index, False, 0)]


_METHODS = {K.METHOD_READ: (False, 0), K.METHOD_WRITE: (True, 0),
            K.METHOD_ATOMIC_READ: (False, 1), K.METHOD_ATOMIC_WRITE: (True, 1)}


def resolve(obj, key, kind, is_write, how, frame):
    """The accesses one probe stands for, as (owner, key, is_write, atomic) and for a key
    deleted from a dict a fifth item, True; `how` is set for builtin accessor calls."""
    if how is not None:
        return _accessor(obj, key, is_write, how)
    if kind == K.ATTR:
        return _attribute(obj, key, is_write)
    if kind == K.GLOBAL:
        return [(frame.f_globals, key, is_write, 0)]
    if kind in _METHODS:
        if container_kind(obj) is not None:
            write, atomic = _METHODS[kind]
            return [(obj, SHAPE, write, atomic)]
        return _attribute(obj, key, False)
    if kind == K.ITEM:
        return _item(obj, key, is_write, False)
    if kind == K.ITEM_DELETE:
        return _item(obj, key, True, True)
    if kind == K.SLICE:
        return _slice(obj, key, is_write) if container_kind(obj) not in (None, "dict") else []
    if kind == K.ITER:
        return _bulk(obj)
    if kind == K.CONCAT:
        return _concat(obj, key, is_write)
    if kind == K.CONTAINS:
        if container_kind(obj) == "dict":
            owner = attributes.alias_owner(obj) if type(key) is str else None
            return [(owner, key, False, 0) if owner is not None else (obj, canonical(key), False, 0)]
        owner = _shape_owner(obj)
        return [(owner, SHAPE, False, 0)] if owner is not None else []
    if kind == K.EQ:
        family = _eq_family(obj)
        if family is None or family is not _eq_family(key):
            return []
        return [(o, SHAPE, False, 0) for o in (_shape_owner(obj), _shape_owner(key))
                if o is not None]
    if kind == K.SUPER:
        owner = superattr.owner(obj, key)
        return [(owner, key, False, 0)] if owner is not None else []
    if kind == K.ATOMIC:
        return [(obj, key, is_write, 1)]
    return [(obj, key, is_write, 0)]  # CELL, unregistered sites: obj itself owns the location


def _accessor(obj, key, is_write, how):
    if how == "shape":
        owner = _shape_owner(obj)
        return [(owner, SHAPE, False, 0)] if owner is not None else []
    if how in ("bulk", "copy"):
        return _bulk(obj, values=how == "copy")
    return _attribute(obj, key, is_write) if type(key) is str else []


# Builtins whose call reads or writes state of their arguments: (is_write, how). "shape": its
# length; "bulk": all its elements (_bulk); "copy": and a dict's values too; "attr": the
# attribute it names.
ACCESSORS = {len: (False, "shape"), dict: (False, "copy")}
ACCESSORS.update({f: (False, "bulk") for f in (list, tuple, sorted, set, frozenset, sum, min,
                                                max, any, all, enumerate, reversed, iter,
                                                bytes, bytearray, zip, map, filter)})
ACCESSORS.update({getattr: (False, "attr"), hasattr: (False, "attr"), setattr: (True, "attr"),
                  delattr: (True, "attr"),
                  # `object.__setattr__(obj, name, value)`: how frozen dataclasses write
                  object.__setattr__: (True, "attr"), object.__delattr__: (True, "attr")})
