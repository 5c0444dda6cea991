"""Where an access lands in both engines: attribute owners, modules, classes, super(), skips."""

import threading
import types
import weakref

import pytest

from tests.unit.engines import ENGINES, Driver, engines

ATTR1, ATTR2, SUPER, GLOBAL, PLAIN1, PLAIN2 = 1, 2, 3, 4, 5, 6
SITES = {ATTR1: "attr", ATTR2: "attr", SUPER: "super", GLOBAL: "global"}


class Obj:
    pass


class Local:
    """Stands in for threading.local: configured as an ignored type."""


class SubLocal(Local):
    pass


def write_twice(engine, obj, key, first, second, **config):
    """Thread 1 then thread 0 write obj.key at the given sites, unordered; the driver."""
    with Driver(engine, sites=SITES, **config) as d:
        d(1, "write", obj, key, first)
        d(0, "write", obj, key, second)
    return d


# -- ignored types -----------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", [Local, SubLocal, threading.local], ids=["type", "subclass",
                                                                          "threading.local"])
def test_ignored_types_never_race(engine, make):
    d = write_twice(engine, make(), "a", ATTR1, ATTR2,
                    ignored_types=(Local, threading.local))
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_other_types_race_while_some_are_ignored(engine):
    d = write_twice(engine, Obj(), "a", ATTR1, ATTR2, ignored_types=(Local, threading.local))
    assert d.races() == {(ATTR1, ATTR2): 1}


# -- attribute sites: objects that cannot have attributes of their own ---------------------------

STATIC_NO_DICT = {
    "int": lambda: int("123456789012345678901234567890"),
    "tuple": lambda: (1, object()),
    "object": object,
    "frozenset": lambda: frozenset({object()}),
    "range": lambda: range(10),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", STATIC_NO_DICT)
def test_attr_sites_skip_static_types_without_dict(engine, kind):
    assert write_twice(engine, STATIC_NO_DICT[kind](), "real", ATTR1, ATTR2).races() == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", STATIC_NO_DICT)
def test_plain_sites_on_the_same_objects_race(engine, kind):
    """The skip is the attribute sites' rule: the same objects are locations elsewhere."""
    races = write_twice(engine, STATIC_NO_DICT[kind](), "real", PLAIN1, PLAIN2).races()
    assert races == {(PLAIN1, PLAIN2): 1}


def _function():
    pass


WITH_DICT = {
    "instance": Obj,
    "function": lambda: types.FunctionType(_function.__code__, {}),
    "class": lambda: type("Fresh", (), {}),
    "exception": lambda: ValueError("x"),
    "namespace": types.SimpleNamespace,
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", WITH_DICT)
def test_attr_sites_track_objects_that_have_attributes(engine, kind):
    obj = WITH_DICT[kind]()
    d = write_twice(engine, obj, "a", ATTR1, ATTR2)
    assert d.races() == {(ATTR1, ATTR2): 1}
    assert d.events[0].target is obj


@pytest.mark.parametrize("engine", ENGINES)
def test_writes_through_a_weakref_proxy_are_writes_to_its_referent(engine):
    obj = Obj()
    proxy = weakref.proxy(obj)
    with Driver(engine, sites=SITES) as d:
        d(1, "write", proxy, "n", ATTR1)
        d(0, "write", obj, "n", ATTR2)
    assert d.races() == {(ATTR1, ATTR2): 1}


# -- modules and globals -----------------------------------------------------------------------

def _module():
    """A module with a function that writes its global `x` through a GLOBAL site."""
    module = types.ModuleType("racewatch_test_module")
    exec("def set_x(engine, site):\n    engine.write(None, 'x', site)\n", module.__dict__)
    return module


@pytest.mark.parametrize("engine", ENGINES)
def test_module_attribute_is_its_dict_entry(engine):
    module = _module()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", module, "x", ATTR1)
        d(0, "write", module.__dict__, "x", PLAIN1)
    assert d.races() == {(ATTR1, PLAIN1): 1}
    assert d.events[0].target is module.__dict__


@pytest.mark.parametrize("engine", ENGINES)
def test_module_attribute_is_its_global(engine):
    module = _module()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", module, "x", ATTR1)
        d.call(0, module.set_x, engine, GLOBAL)
    assert d.races() == {(ATTR1, GLOBAL): 1}
    assert d.events[0].target is module.__dict__


@pytest.mark.parametrize("engine", ENGINES)
def test_globals_of_two_modules_are_separate(engine):
    one, two = _module(), _module()
    with Driver(engine, sites=SITES) as d:
        d.call(1, one.set_x, engine, GLOBAL)
        d.call(0, two.set_x, engine, GLOBAL)
        d(0, "write", one, "y", ATTR1)
    assert d.races() == {}


# -- classes and super() -----------------------------------------------------------------------

class Base:
    shared = 0


class Derived(Base):
    pass


@pytest.mark.parametrize("engine", ENGINES)
def test_class_attribute_race_names_the_class(engine):
    d = write_twice(engine, Base, "shared", ATTR1, ATTR2)
    assert d.races() == {(ATTR1, ATTR2): 1}
    assert d.events[0].target is Base


@pytest.mark.parametrize("engine", ENGINES)
def test_instance_attribute_is_not_the_class_attribute(engine):
    with Driver(engine, sites=SITES) as d:
        d(1, "write", Base, "shared", ATTR1)
        d(0, "write", Derived(), "shared", ATTR2)
    assert d.races() == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("form", ["pair", "super"])
def test_super_read_lands_on_the_class_that_has_the_attribute(engine, form):
    inst = Derived()
    probe = ((Derived, inst), SUPER) if form == "pair" else (super(Derived, inst), ATTR2)
    with Driver(engine, sites=SITES) as d:
        d(1, "write", Base, "shared", ATTR1)
        d(0, "read", probe[0], "shared", probe[1])
    assert d.races() == {(ATTR1, probe[1]): 1}
    assert d.events[0].target is Base


@pytest.mark.parametrize("engine", ENGINES)
def test_super_read_of_a_missing_attribute_is_nothing(engine):
    inst = Derived()
    with Driver(engine, sites=SITES) as d:
        d(1, "write", Base, "missing", ATTR1)
        d(0, "read", (Derived, inst), "missing", SUPER)
    assert d.races() == {}


