"""Attributes through instances in both engines: class values, methods, properties and data
descriptors, members, and `obj.__dict__` as the instance's attributes."""

import pytest

from racewatch.runtime import sitekinds
from tests.unit.engines import ENGINES, Driver

ATTR1, ATTR2, ATTR3, ITEM, CONTAINS, CALL, METHOD = 1, 2, 3, 4, 5, 6, 7
SITES = {ATTR1: "attr", ATTR2: "attr", ATTR3: "attr", ITEM: "item", CONTAINS: "contains",
         CALL: "call", METHOD: "atomic_read"}


def instrumented(function):
    """`function`, its code marked as racewatch's (as if its module had been rewritten)."""
    code = function.__code__
    function.__code__ = code.replace(co_consts=code.co_consts + (sitekinds.MARKER,))
    return function


class Worker:
    limit = 10
    timeout = None

    def run(self):
        pass


class Shadowing(Worker):
    def __init__(self):
        self.limit = 5
        self.timeout = None  # the very same object as the class's: only its __dict__ tells


def reads(d, thread, obj, key, site, times=3):
    for _ in range(times):  # the first fills the engines' caches, the others take fast paths
        d(thread, "read", obj, key, site)


# -- class values ----------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("order", ["write first", "read first"])
def test_class_value_read_through_an_instance_reads_the_class_attribute(engine, order):
    with Driver(engine, sites=SITES) as d:
        if order == "write first":
            d(1, "write", Worker, "limit", ATTR1)
        reads(d, 0, Worker(), "limit", ATTR2)
        if order == "read first":
            d(1, "write", Worker, "limit", ATTR1)
    assert d.races() == {(ATTR1, ATTR2): 1}
    assert d.events[0].target is Worker and d.events[0].key == "limit"


@pytest.mark.parametrize("engine", ENGINES)
def test_class_value_read_also_reads_the_instance_attribute(engine):
    """Another thread giving the instance its own value races with the read of the default."""
    worker = Worker()
    with Driver(engine, sites=SITES) as d:
        reads(d, 0, worker, "limit", ATTR2)
        d(1, "write", worker, "limit", ATTR1)
    assert d.races() == {(ATTR1, ATTR2): 1}
    assert d.events[0].target is worker


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("key", ["limit", "timeout"])
def test_an_instance_value_hides_the_class_value(engine, key):
    shadowing = Shadowing()
    with Driver(engine, sites=SITES) as d:
        reads(d, 0, shadowing, key, ATTR2)
        d(1, "write", Worker, key, ATTR1)
        reads(d, 0, shadowing, key, ATTR3)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_class_value_of_a_subclass_instance_is_the_defining_class_attribute(engine):
    class Sub(Worker):
        pass

    with Driver(engine, sites=SITES) as d:
        reads(d, 0, Sub(), "limit", ATTR2)
        d(1, "write", Worker, "limit", ATTR1)
    assert d.races() == {(ATTR1, ATTR2): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_writes_through_an_instance_are_the_instance_attribute(engine):
    with Driver(engine, sites=SITES) as d:
        d(0, "write", Worker(), "limit", ATTR2)
        d(1, "write", Worker, "limit", ATTR1)
    assert d.races() == {}


# -- properties and data descriptors ---------------------------------------------------------

def _property(code_seen):
    wrap = instrumented if code_seen else (lambda f: f)

    class Gauge:
        @property
        @wrap
        def value(self):
            return 0

        @value.setter
        @wrap
        def value(self, new):
            pass

        @value.deleter
        @wrap
        def value(self):
            pass

        @property
        @wrap
        def read_only(self):
            return 0

    return Gauge


def _descriptor(code_seen):
    wrap = instrumented if code_seen else (lambda f: f)

    class Locked:
        @wrap
        def __get__(self, obj, owner=None):
            return 0

        @wrap
        def __set__(self, obj, value):
            pass

    class Box:
        value = Locked()

    return Box


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", [_property, _descriptor], ids=["property", "descriptor"])
@pytest.mark.parametrize("second", ["read", "write"])
def test_data_descriptors_running_instrumented_code_are_no_access_of_their_own(engine, make,
                                                                              second):
    obj = make(True)()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", obj, "value", ATTR1)
        if second == "read":
            reads(d, 0, obj, "value", ATTR2)
        else:
            d(0, "write", obj, "value", ATTR2)
        d(0, "call", setattr, obj, "value", CALL)
        d(1, "call", getattr, obj, "value", CALL)
        d(1, "read", obj, "value", METHOD)  # `obj.value.items()`: a method-kind site
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", [_property, _descriptor], ids=["property", "descriptor"])
def test_data_descriptors_of_code_not_seen_are_accesses_at_the_call_site(engine, make):
    obj = make(False)()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", obj, "value", ATTR1)
        reads(d, 0, obj, "value", ATTR2)
    assert d.races() == {(ATTR1, ATTR2): 1}
    assert d.events[0].target is obj


@pytest.mark.parametrize("engine", ENGINES)
def test_a_property_without_setter_is_no_write(engine):
    """`obj.read_only = v` raises: nothing is written."""
    obj = _property(True)()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", obj, "read_only", ATTR1)
        d(0, "write", obj, "read_only", ATTR2)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_members_of_slots_stay_accesses(engine):
    class Slotted:
        __slots__ = ("value",)

    obj = Slotted()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", obj, "value", ATTR1)
        reads(d, 0, obj, "value", ATTR2)
    assert d.races() == {(ATTR1, ATTR2): 1}


# -- methods -----------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("via", ["attr", "getattr"])
def test_method_reads_are_the_class_attribute(engine, via):
    with Driver(engine, sites=SITES) as d:
        if via == "attr":
            reads(d, 0, Worker(), "run", ATTR2)
        else:
            d(0, "call", getattr, Worker(), "run", CALL)
        d(1, "write", Worker, "run", ATTR1)
    site = ATTR2 if via == "attr" else CALL
    assert d.races() == {tuple(sorted((ATTR1, site))): 1}
    assert d.events[0].target is Worker


# -- obj.__dict__ ------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", ["write", "delete", "contains"])
def test_instance_dict_items_are_the_instance_attributes(engine, op):
    obj = Shadowing()
    own = obj.__dict__
    with Driver(engine, sites={**SITES, ITEM: "item_delete" if op == "delete" else "item"}) as d:
        d(0, "read", obj, "__dict__", ATTR3)  # obj.__dict__: its items are obj's attributes
        if op == "contains":
            d(0, "read", own, "limit", CONTAINS)
        else:
            d(0, "write", own, "limit", ITEM)
        d(1, "write", obj, "limit", ATTR1)
    pair = tuple(sorted((ATTR1, CONTAINS if op == "contains" else ITEM)))
    assert d.races() == {pair: 1}
    assert d.events[0].target is obj and d.events[0].key == "limit"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_replaced_instance_dict_is_a_plain_dict_again(engine):
    obj = Shadowing()
    old = obj.__dict__
    with Driver(engine, sites=SITES) as d:
        d(0, "read", obj, "__dict__", ATTR3)
        obj.__dict__ = {"limit": 1}
        d(0, "write", old, "limit", ITEM)
        d(1, "write", obj, "limit", ATTR1)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_dicts_never_read_as_an_instance_dict_stay_dicts(engine):
    obj = Shadowing()
    with Driver(engine, sites=SITES) as d:
        d(0, "write", obj.__dict__, "limit", ITEM)  # no probe saw obj.__dict__ being read
        d(1, "write", obj, "limit", ATTR1)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_non_str_keys_of_an_instance_dict_stay_dict_items(engine):
    obj = Shadowing()
    own = obj.__dict__
    with Driver(engine, sites=SITES) as d:
        d(0, "read", obj, "__dict__", ATTR3)
        d(0, "write", own, 1, ITEM)
        d(1, "write", own, 1, ITEM)
    assert d.races() == {(ITEM, ITEM): 1}
    assert d.events[0].target is own
