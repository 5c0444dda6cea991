"""Where container, cell and builtin-accessor probes land in both engines, and what races.

Each case makes one probe on thread 1, then one on thread 0, unordered: the site kinds of
sitekinds.py decide the locations (one per dict key / list index, plus the container's shape).
"""

import collections
import types

import pytest

from tests.unit.engines import ENGINES, Driver, engines


class Obj:
    pass


class Key:
    """A dict key that could run user code when hashed: compared by identity."""


KEY = Key()
DEEP = ((((("x",),),),),)


def probe(engine, op, obj, kind, key, site):
    """One probe as rewritten code makes it; `kind` names the site's kind (`call:len`...)."""
    if kind.startswith("call:"):
        func = {"len": len, "getattr": getattr, "setattr": setattr, "hasattr": hasattr,
                "sorted": sorted, "sum": sum, "list": list, "dict": dict,
                "bytes": bytes}[kind[5:]]
        engine.call(func, obj, key, site)
    else:
        (engine.write if op == "write" else engine.read)(obj, key, site)


OTHER = object()  # as a key: a second object made like the first

# name: (make the object, thread 1's probe, thread 0's probe, whether they race). A probe is
# (op, kind, key) on the object, or (op, kind, key, "other" / "keys") on a second object made
# the same way / on the object's keys view.
CASES = {
    "dict key write vs read": (lambda: {"k": 0}, ("write", "item", "k"), ("read", "item", "k"),
                               True),
    "dict two keys": (lambda: {"k": 0, "j": 0}, ("write", "item", "k"), ("write", "item", "j"),
                      False),
    "dict existing key write vs len": (lambda: {"k": 0}, ("write", "item", "k"),
                                       ("read", "call:len", None), False),
    "dict new key write vs len": (dict, ("write", "item", "k"), ("read", "call:len", None),
                                  True),
    "dict new key write vs iteration": (dict, ("write", "item", "k"), ("read", "iter", None),
                                        True),
    "dict new keys from two threads": (dict, ("write", "item", "k"), ("write", "item", "j"),
                                       False),
    "dict new key write vs atomic update": (dict, ("write", "item", "k"),
                                            ("write", "atomic_write", None), False),
    "dict new key write vs shape write": (dict, ("write", "item", "k"),
                                          ("write", "shape_write", None), True),
    "dict new key write vs del": (lambda: {"j": 0}, ("write", "item", "k"),
                                  ("write", "item_delete", "j"), True),
    "dict del vs other key read": (lambda: {"k": 0, "j": 0}, ("write", "item_delete", "k"),
                                   ("read", "item", "j"), False),
    "dict del vs sorted()": (lambda: {"k": 0}, ("write", "item_delete", "k"),
                             ("read", "call:sorted", None), True),
    "dict contains vs key write": (lambda: {"k": 0}, ("read", "contains", "k"),
                                   ("write", "item", "k"), True),
    "dict equal keys are one": (dict, ("write", "item", 1), ("write", "item", 1.0), True),
    "dict tuple keys by value": (dict, ("write", "item", (1, "a")),
                                 ("write", "item", (1, "".join("a"))), True),
    "dict object keys by identity": (dict, ("write", "item", KEY), ("read", "item", Key()),
                                     False),
    "dict same object key": (dict, ("write", "item", KEY), ("read", "item", KEY), True),
    "dict atomic get vs atomic setdefault": (dict, ("read", "atomic_read", None),
                                             ("write", "atomic_write", None), False),
    "dict atomic update vs iteration": (dict, ("write", "atomic_write", None),
                                        ("read", "iter", None), True),
    "defaultdict missing read inserts": (lambda: collections.defaultdict(int),
                                         ("read", "item", "k"), ("read", "call:len", None),
                                         True),
    "dict subclass with own __getitem__": (lambda: type("D", (dict,), {
        "__getitem__": lambda self, k: 0})(), ("write", "item", "k"), ("read", "item", "k"),
        False),
    "list index vs negative index": (lambda: [0, 1, 2], ("write", "item", -1),
                                     ("read", "item", 2), True),
    "list two indices": (lambda: [0, 1, 2], ("write", "item", 0), ("write", "item", 1), False),
    "list index write vs len": (lambda: [0, 1], ("write", "item", 0),
                                ("read", "call:len", None), False),
    "list del vs len": (lambda: [0, 1], ("write", "item_delete", 0),
                        ("read", "call:len", None), True),
    "list slice write vs covered index": (lambda: [0, 1, 2], ("write", "slice", slice(0, 2)),
                                          ("read", "item", 1), True),
    "list slice write vs index outside": (lambda: [0, 1, 2], ("write", "slice", slice(0, 1)),
                                          ("read", "item", 2), False),
    "list slice read vs append": (lambda: [0, 1], ("read", "slice", slice(None, None)),
                                  ("write", "atomic_write", None), True),
    "list append vs append": (list, ("write", "atomic_write", None),
                              ("write", "atomic_write", None), False),
    "list append vs len": (list, ("write", "atomic_write", None), ("read", "call:len", None),
                           True),
    "list sort vs iteration": (list, ("write", "shape_write", None), ("read", "iter", None),
                               True),
    "list equality reads the other's shape": (list, ("read", "eq", OTHER),
                                              ("write", "atomic_write", None, "other"), True),
    "set contains vs add": (set, ("read", "contains", 1), ("write", "atomic_write", None),
                            True),
    "deque len vs popleft": (collections.deque, ("read", "call:len", None),
                             ("write", "atomic_write", None), True),
    "bytearray item vs item": (lambda: bytearray(3), ("write", "item", 1), ("read", "item", 1),
                               True),
    "dict view iteration vs insert": (dict, ("read", "iter", None, "keys"),
                                      ("write", "item", "k"), True),
    "getattr vs attribute write": (Obj, ("read", "call:getattr", "x"), ("write", "attr", "x"),
                                   True),
    "setattr vs attribute read": (Obj, ("write", "call:setattr", "x"), ("read", "attr", "x"),
                                  True),
    "hasattr with a non-str name": (Obj, ("read", "call:hasattr", 3), ("write", "attr", 3),
                                    False),
    "cell write vs read": (lambda: types.CellType(0), ("write", "cell", "n"),
                           ("read", "cell", "n"), True),
    "method site on a non-container reads the attribute": (
        Obj, ("read", "shape_read", "append"), ("write", "attr", "append"), True),
    # bulk reads: every item (a list-like's blocks, a dict's values where they are read)
    "list item write vs iteration": (lambda: [0, 1, 2], ("write", "item", 1),
                                     ("read", "iter", None), True),
    "list item write vs sum()": (lambda: [0, 1, 2], ("write", "item", 1),
                                 ("read", "call:sum", None), True),
    "list item write vs list()": (lambda: [0, 1, 2], ("write", "item", 2),
                                  ("read", "call:list", None), True),
    "list item writes of one block": (lambda: [0, 1, 2], ("write", "item", 0),
                                      ("write", "item", 1), False),
    "list item write vs slice of its block": (lambda: list(range(40)), ("write", "item", 5),
                                              ("read", "slice", slice(0, 16)), True),
    "list item write vs long slice": (lambda: list(range(40)), ("write", "item", 35),
                                      ("read", "slice", slice(0, 40)), True),
    "list item write vs long slice elsewhere": (lambda: list(range(100)), ("write", "item", 60),
                                                ("read", "slice", slice(5, 45)), False),
    "list item write vs slice edge elsewhere": (lambda: list(range(100)), ("write", "item", 4),
                                                ("read", "slice", slice(5, 45)), False),
    "list item write vs stepped slice": (lambda: list(range(40)), ("write", "item", 4),
                                         ("read", "slice", slice(0, 40, 2)), True),
    "list item write vs stepped slice between": (lambda: list(range(40)), ("write", "item", 5),
                                                 ("read", "slice", slice(0, 40, 2)), False),
    "list concat reads the right list": (lambda: [0, 1], ("read", "concat", OTHER),
                                         ("write", "item", 1, "other"), True),
    "list concat reads the left list": (lambda: [0, 1], ("read", "concat", OTHER),
                                        ("write", "item", 0), True),
    "list += writes the shape": (lambda: [0], ("write", "concat", OTHER),
                                 ("read", "call:len", None), True),
    "list += vs append": (lambda: [0], ("write", "concat", OTHER),
                          ("write", "atomic_write", None), False),
    "list += reads the right list": (lambda: [0, 1], ("write", "concat", OTHER),
                                     ("write", "item", 0, "other"), True),
    "dict value overwrite vs values": (lambda: {"k": 0}, ("write", "item", "k"),
                                       ("read", "call:sum", None, "values"), True),
    "dict value overwrite vs key iteration": (lambda: {"k": 0}, ("write", "item", "k"),
                                              ("read", "iter", None), False),
    "dict value overwrite vs dict()": (lambda: {"k": 0}, ("write", "item", "k"),
                                       ("read", "call:dict", None), True),
    "bytearray item write vs bytes()": (lambda: bytearray(3), ("write", "item", 1),
                                        ("read", "call:bytes", None), True),
    "deque item write vs iteration": (lambda: collections.deque([0, 1]), ("write", "item", 1),
                                      ("read", "iter", None), True),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", CASES)
def test_probe_pair(engine, name):
    make, first, second, expected = CASES[name]
    objects = {"obj": make(), "other": make()}
    objects["keys"] = getattr(objects["obj"], "keys", lambda: None)()
    objects["values"] = getattr(objects["obj"], "values", lambda: None)()
    with Driver(engine, sites={1: first[1].split(":")[0], 2: second[1].split(":")[0]}) as d:
        for thread, site, (op, kind, key, *on) in ((1, 1, first), (0, 2, second)):
            key = objects["other"] if key is OTHER else key
            d.call(thread, probe, engine, op, objects[on[0] if on else "obj"], kind, key, site)
    assert bool(d.races()) == expected, d.races()


# -- regressions: differences between the engines, fixed ----------------------------------------

@pytest.mark.parametrize("engine", engines())
def test_deeply_nested_tuple_keys_compare_by_value(engine):
    table = {}
    with Driver(engine, sites={1: "item"}) as d:
        d(1, "write", table, DEEP, 1)
        d(0, "write", table, ((((("".join("x"),),),),),), 1)
    assert d.races() == {(1, 1): 1}  # the key (the inserts' shape writes are atomic)


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("view", ["keys", "values", "items"])
def test_ordered_dict_view_iteration_reads_the_shape(engine, view):
    od = collections.OrderedDict(a=1)
    with Driver(engine, sites={1: "iter", 2: "item"}) as d:
        d(1, "read", getattr(od, view)(), None, 1)
        d(0, "write", od, "new", 2)
    # the shape; a values or items view reads the values too, which an insert writes
    assert d.races() == {(1, 2): 1 if view == "keys" else 2}


class Base:
    def helper(self):
        pass


class Derived(Base):
    pass


@pytest.mark.parametrize("engine", engines())
def test_method_site_on_a_super_object_reads_the_class_attribute(engine):
    with Driver(engine, sites={1: "attr", 2: "method_read"}) as d:
        d(1, "write", Base, "helper", 1)
        d(0, "read", super(Derived, Derived()), "helper", 2)
    assert d.races() == {(1, 2): 1}
