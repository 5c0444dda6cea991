"""Where an attribute access through an instance lands, for the twin (`fast/attributes.c`
mirrors it): the plan its class's attribute gives it, and instances' `__dict__` aliases.

What `obj.name` touches depends on what the lookup of `name` in type(obj)'s MRO finds:
- nothing, a member (`__slots__`) or another C descriptor: the instance's attribute;
- a method: the class's attribute (what `Class.m = other` writes);
- a plain value (a class-level default): the instance's attribute (its absence is read too)
  and, unless the instance's own `__dict__` has the name, the class's;
- a property or data descriptor whose code is instrumented: nothing of its own at the call
  site; the getter or setter's own accesses are what happens (they may well be locked);
- `__dict__`: the instance's attribute, and the dict becomes an alias of the instance, so
  that `obj.__dict__[k]` and `obj.k` are one location.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import types
import weakref

from racewatch.runtime import sitekinds

try:  # the C runtime's own view of an instance's __dict__, so both engines see the same dict
    from racewatch.runtime._fast import instance_dict as _c_instance_dict
except ImportError:
    _c_instance_dict = None

INSTANCE, CLASS, VALUE, NOTHING, DICT = range(5)

_HEAPTYPE = 1 << 9
_METHODS = (types.FunctionType, types.MethodDescriptorType, types.ClassMethodDescriptorType,
            classmethod, staticmethod)
_C_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)
_PROPERTY_SLOTS = {name: property.__dict__[name] for name in ("__get__", "__set__", "__delete__")}
_PROPERTY_FIELDS = {"__get__": property.__dict__["fget"], "__set__": property.__dict__["fset"],
                    "__delete__": property.__dict__["fdel"]}
_MISSING = object()


def _lookup(tp, name):
    """(value, class defining it) of `name` in tp's MRO, read from the classes' own dicts: no
    descriptor, no metaclass code runs. (_MISSING, None) when no class has it."""
    for klass in tp.__mro__:
        namespace = klass.__dict__
        if name in namespace:
            return namespace[name], klass
    return _MISSING, None


def instrumented(function):
    """Whether calling `function` runs code racewatch rewrote (its probes see its accesses)."""
    return type(function) is types.FunctionType and code_instrumented(function.__code__)


def code_instrumented(code):
    """Whether `code` is code racewatch rewrote."""
    consts = code.co_consts
    return bool(consts) and consts[-1] == sitekinds.MARKER


def _runs(descriptor, slot):
    """What a descriptor's `slot` (__get__, __set__, __delete__) runs: a function, None when
    there is nothing to run (a property without that function), _MISSING without the slot."""
    impl, _ = _lookup(type(descriptor), slot)
    if impl is _MISSING:
        return _MISSING
    if impl is _PROPERTY_SLOTS[slot]:  # property's own slot: its fget / fset / fdel
        return _PROPERTY_FIELDS[slot].__get__(descriptor)
    return impl


def _quiet(descriptor, slot):
    """Whether `slot` of a data descriptor leaves nothing to record at the call site: it runs
    instrumented code, or raises (a property without that function; no __set__ or
    __delete__). A data descriptor without __get__ reads the instance's own attribute."""
    impl = _runs(descriptor, slot)
    if impl is _MISSING:
        return slot != "__get__"
    return impl is None or instrumented(impl)


def plan(tp, name):
    """(read plan, write plan, owner class) of attribute `name` of instances of heap type
    `tp`. A write plan covers deletes: a descriptor is quiet only if both its setter and its
    deleter are."""
    attr, owner = _lookup(tp, name)
    if attr is _MISSING:
        return INSTANCE, INSTANCE, None
    if isinstance(attr, _METHODS):
        return CLASS, INSTANCE, owner
    kind = type(attr)
    if any(_lookup(kind, slot)[0] is not _MISSING for slot in ("__set__", "__delete__")):
        if kind in _C_DESCRIPTORS:
            return (DICT if name == "__dict__" and kind is types.GetSetDescriptorType
                    else INSTANCE), INSTANCE, None
        read = NOTHING if _quiet(attr, "__get__") else INSTANCE
        write = NOTHING if _quiet(attr, "__set__") and _quiet(attr, "__delete__") else INSTANCE
        return read, write, None
    if _lookup(kind, "__get__")[0] is not _MISSING or not owner.__flags__ & _HEAPTYPE:
        return INSTANCE, INSTANCE, None  # a non-data descriptor, or a builtin class's value
    return VALUE, INSTANCE, owner


def instance_dict(obj):
    """obj's own __dict__ (made if its attributes are kept inline), or None."""
    if _c_instance_dict is not None:
        return _c_instance_dict(obj)
    getter, _ = _lookup(type(obj), "__dict__")
    if type(getter) is not types.GetSetDescriptorType:
        return None
    try:
        found = getter.__get__(obj)
    except (AttributeError, TypeError):
        return None
    return found if type(found) is dict else None


def shadowed(obj, name):
    """Whether obj's own __dict__ has `name` (which then hides the class's value)."""
    own = instance_dict(obj)
    return own is not None and name in own


try:  # where it is built, the C runtime keeps the aliases: without a weakref to show
    from racewatch.runtime._fast import alias_owner as _c_alias_owner, note_dict as _c_note_dict
except ImportError:
    _c_alias_owner = _c_note_dict = None
_aliases = {}  # id(dict) -> weakref to the instance whose __dict__ it was seen to be


def note_dict(obj):
    """obj.__dict__ was read: its items are obj's attributes from now on."""
    if _c_note_dict is not None:
        return _c_note_dict(obj)
    own = instance_dict(obj)
    if own is None:
        return
    key = id(own)
    try:  # (visible through obj.__weakref__: the C runtime's way shows nothing)
        _aliases[key] = weakref.ref(obj, lambda ref, key=key: _forget(key, ref))
    except TypeError:
        pass  # an instance that cannot be weakly referenced keeps its dict a plain dict


def _forget(key, ref, _aliases=_aliases):
    if _aliases.get(key) is ref:
        del _aliases[key]


def alias_owner(d):
    """The instance whose __dict__ `d` is (seen through obj.__dict__), or None."""
    if _c_alias_owner is not None:
        return _c_alias_owner(d)
    ref = _aliases.get(id(d)) if _aliases else None
    owner = ref() if ref is not None else None
    if owner is None or instance_dict(owner) is not d:  # a dead or replaced __dict__
        return None
    return owner
