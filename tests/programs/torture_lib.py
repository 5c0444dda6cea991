"""Most of the torture program: constructs whose behaviour instrumentation must not change."""

import asyncio
import collections
import contextlib
import dataclasses
import enum
import functools
import operator
import os
import sys
import threading
import weakref

COUNTER = 0
SECTIONS = []


def section(fn):
    """Register a section; run_all prints its name, then what it returns."""
    SECTIONS.append(fn)
    return fn


def run_all():
    for fn in SECTIONS:
        print(f"== {fn.__name__}")
        for item in fn():
            print("  ", item)


def caught(thunk):
    """What `thunk()` returns, or the type and message of the exception it raises."""
    try:
        return ("ok", thunk())
    except Exception as exc:  # noqa: BLE001 - the outcome itself is what gets compared
        return (type(exc).__name__, str(exc))


class Box:
    def __init__(self, value):
        self.value = value
        self.log = []

    def method_kw(self, a, b=0, *, c=1):
        return (a, b, c, self.value)


# -- generators ---------------------------------------------------------------------------

def echo(box):
    total = 0
    try:
        while True:
            try:
                got = yield box.value + total
            except KeyError as exc:
                box.log.append(f"caught {exc.args[0]}")
                got = -1
            if got is None:
                continue
            total += got
            box.value = got
    except GeneratorExit:
        box.log.append("closed")
        raise
    finally:
        box.log.append("finally")


def inner(box):
    for box.index in range(3):
        sent = yield box.index
        if sent:
            box.log.append(f"inner got {sent}")
    return box.index * 10


def delegate(box):
    result = yield from inner(box)
    box.log.append(f"inner returned {result}")
    yield from (box.value * i for i in range(3))
    return len(box.log)


def drain(gen, *sends):
    """Send each value (None means next), then exhaust; report the values and the return."""
    out = []
    try:
        for value in sends:
            out.append(gen.send(value))
        while True:
            out.append(next(gen))
    except StopIteration as stop:
        out.append(("return", stop.value))
    return out


@section
def generators():
    box = Box(1)
    gen = echo(box)
    yield next(gen), gen.send(5), gen.throw(KeyError("k")), next(gen)
    gen.close()
    yield box.log
    yield caught(lambda: echo(Box(2)).throw(ValueError("unstarted")))
    box2 = Box(2)
    yield drain(delegate(box2), None, "a", None, "b")
    yield box2.log, box2.index
    gen = echo(Box(3))
    next(gen)
    yield caught(lambda: gen.throw(AttributeError("thrown")))
    yield gen.gi_frame is None, list(zip(range(3), (b.value for b in [box, box2])))


# -- async --------------------------------------------------------------------------------

class AsyncResource:
    def __init__(self, name, log):
        self.name = name
        self.log = log
        self.open = False

    async def __aenter__(self):
        self.open = True
        self.log.append(f"enter {self.name}")
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.open = False
        self.log.append(f"exit {self.name} {exc_type.__name__ if exc_type else None}")
        return exc_type is KeyError  # swallows KeyError only


async def ticker(res, n):
    try:
        for i in range(n):
            await asyncio.sleep(0)
            sent = yield f"{res.name}-{i}"
            if sent:
                res.log.append(f"ticker got {sent}")
    finally:
        res.log.append(f"ticker {res.name} done")


class AsyncCounter:
    def __init__(self, stop):
        self.i = 0
        self.stop = stop

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.i >= self.stop:
            raise StopAsyncIteration
        self.i += 1
        return self.i


async def scaled(box, i):
    await asyncio.sleep(0)
    return box.value * i


async def async_main():
    log = []
    async with AsyncResource("a", log) as res:
        items = [x async for x in ticker(res, 3)]
    async with AsyncResource("b", log) as res:
        res.log.append(f"open {res.open}")
        raise KeyError("swallowed")
    total = 0
    async for v in AsyncCounter(4):
        total += v
    agen = ticker(AsyncResource("c", log), 5)
    first = await agen.__anext__()
    second = await agen.asend("hello")
    await agen.aclose()
    thrown = None
    try:
        async with AsyncResource("d", log):
            raise ValueError("kept")
    except ValueError as exc:
        thrown = str(exc)
    gathered = await asyncio.gather(*(scaled(Box(7), i) for i in range(3)))
    awaited = (await scaled(Box(3), 2)).bit_length(), (await asyncio.sleep(0, Box(4))).value
    return log, items, total, first, second, thrown, gathered, awaited


@section
def async_code():
    yield from asyncio.run(async_main())


# -- match ----------------------------------------------------------------------------------

class Point:
    __match_args__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


class Limits:
    HIGH = 100


def classify(subject):
    match subject:
        case Point(0, 0):
            return "origin"
        case Point(x=0, y=y):
            return f"on the y axis at {y}"
        case Point(x, y) if x == y:
            return f"diagonal {x}"
        case Point(x=px) as p if p.y < 0:
            return f"below at {px} {p.y}"
        case Point():
            return f"point {subject.x},{subject.y}"
        case Color.RED:
            return "red"
        case Color.GREEN | Color.BLUE as c:
            return f"cool {c.name}"
        case Limits.HIGH:
            return "high"
        case {"kind": "box", "size": size, **rest}:
            return f"box {size} {sorted(rest)}"
        case [Point(x=a), Point(x=b)]:
            return f"two points {a} {b}"
        case [first, *middle, last]:
            return f"seq {first} {middle} {last}"
        case str() as s:
            return f"str {s.upper()}"
        case int(n) | float(n):
            return f"number {n}"
        case _:
            return "other"


@section
def matching():
    subjects = [Point(0, 0), Point(0, 5), Point(3, 3), Point(2, -1), Point(4, 1), Color.RED,
                Color.BLUE, 100, {"kind": "box", "size": 3, "z": 1}, [Point(1, 0), Point(2, 0)],
                [1, 2, 3, 4], "abc", 2.5, None]
    for subject in subjects:
        yield classify(subject)


# -- try / finally / except* --------------------------------------------------------------

def loop_with_finally(box):
    seen = []
    for i in range(6):
        try:
            if i == 1:
                continue
            if i == 4:
                break
            seen.append(box.value + i)
        finally:
            seen.append(f"f{i}")
    return seen


def finally_swallows(box):
    seen = []
    for i in range(4):
        try:
            if i % 2:
                raise ValueError(i)
            seen.append(box.value)
        finally:
            if i == 1:
                continue  # discards the ValueError
            if i == 3:
                break  # discards this one too
    return seen


def return_in_finally(box):
    try:
        raise ValueError(box.value)
    finally:
        return f"finally wins {box.value}"  # noqa: B012 - the point of the test


def handlers(box):
    log = []
    for i in range(4):
        try:
            try:
                if i == 0:
                    box.missing
                elif i == 1:
                    raise KeyError(box.value)
                elif i == 2:
                    raise ValueError("inner") from AttributeError("cause")
            except AttributeError as exc:
                log.append(("attr", exc.name))
                raise RuntimeError("again") from exc
            except KeyError:
                log.append("key")
            else:
                log.append(f"else {i}")
            finally:
                log.append(f"finally {i}")
        except RuntimeError as exc:
            log.append(("runtime", type(exc.__cause__).__name__))
        except ValueError as exc:
            log.append(("value", str(exc.__cause__), exc.__suppress_context__))
    return log


def except_star(box):
    log = []
    try:
        raise ExceptionGroup("group", [ValueError(box.value), TypeError("t"), KeyError("k")])
    except* ValueError as eg:
        log.append(("value", [str(e) for e in eg.exceptions]))
    except* (TypeError, KeyError) as eg:
        log.append(("other", sorted(type(e).__name__ for e in eg.exceptions)))
    try:
        try:
            raise ExceptionGroup("g2", [ValueError(1), OSError(2)])
        except* ValueError:
            log.append("handled value")
    except* OSError as eg:
        log.append(("outer", len(eg.exceptions), eg.message))
    try:
        raise ExceptionGroup("attrs", [AttributeError("a"), AttributeError("b")])
    except* AttributeError as eg:
        log.append(("attrs", eg.exceptions[0].args, eg.split(lambda e: e.args == ("b",))[0]))
    return log


@section
def exceptions():
    box = Box(2)
    yield loop_with_finally(box)
    yield finally_swallows(box)
    yield return_in_finally(box)
    yield handlers(box)
    yield except_star(box)


# -- context managers, closures, comprehensions ----------------------------------------------

class Swallow:
    def __init__(self, *types):
        self.types = types
        self.seen = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.seen.append(exc_type.__name__ if exc_type else None)
        return exc_type is not None and issubclass(exc_type, self.types)


@section
def context_managers():
    swallow = Swallow(AttributeError, ZeroDivisionError)
    with swallow:
        Box(1).missing
    with swallow as swallow.alias:  # an attribute as the `as` target
        swallow.alias.seen.append("body")
    with swallow, contextlib.suppress(KeyError):
        {}["k"]
    with contextlib.suppress(ZeroDivisionError):
        1 / 0
    yield caught(lambda: _not_swallowed(swallow))
    yield swallow.seen
    with contextlib.ExitStack() as stack:
        boxes = [stack.enter_context(contextlib.nullcontext(Box(i))) for i in range(3)]
        stack.callback(swallow.seen.append, "callback")
    yield [b.value for b in boxes], swallow.seen[-1]


def _not_swallowed(swallow):
    with swallow:
        raise ValueError("escapes")


def make_counter(box):
    count = 0

    def bump(step=1):
        nonlocal count
        count += step * box.value
        return count

    def peek():
        def deeper():
            return count + box.value
        return deeper()

    return bump, peek


@section
def closures():
    box = Box(2)
    bump, peek = make_counter(box)
    yield bump(), bump(3), peek()
    box.value = 10
    yield bump(), peek(), bump.__closure__[0].cell_contents.value


@section
def comprehensions():
    points = [Point(i, i * i - 4) for i in range(5)]
    yield [p.x for p in points if p.y > 0]
    yield sorted({p.y % 3 for p in points})
    yield {p.x: p.y for p in points}
    yield [[q.x * p.y for q in points if q.x != p.x] for p in points[:2]]
    yield sum(p.x * p.y for p in points)
    holder = Box(0)
    yield [holder.value * 2 for holder.value in range(3)], holder.value
    yield [y for p in points if (y := p.x * 2) > 2], y
    yield list(map(operator.attrgetter("x"), points[:2])), sorted(points, key=lambda p: -p.y)[0].x


# -- slots, properties, attribute hooks -----------------------------------------------------

class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a


class Temperature:
    def __init__(self):
        self._c = 0
        self.log = []

    @property
    def celsius(self):
        self.log.append("get")
        return self._c

    @celsius.setter
    def celsius(self, value):
        self.log.append("set")
        self._c = value

    @celsius.deleter
    def celsius(self):
        self.log.append("del")
        del self._c

    @property
    def broken(self):
        return self._missing


class Fallback(Temperature):
    def __getattr__(self, name):
        return f"fallback {name}"


class Tracked:
    def __init__(self):
        object.__setattr__(self, "events", [])
        self.x = 1

    def __getattribute__(self, name):
        if name != "events":
            object.__getattribute__(self, "events").append(("get", name))
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        if name.startswith("dyn_"):
            return name[4:]
        raise AttributeError(f"no {name}")

    def __setattr__(self, name, value):
        self.events.append(("set", name))
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self.events.append(("del", name))
        object.__delattr__(self, name)


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: str = "b"


@section
def attribute_protocols():
    s = Slotted(1)
    yield caught(lambda: s.b)
    yield caught(lambda: setattr(s, "c", 3))
    s.b = 2
    del s.a
    yield caught(lambda: s.a), s.b, hasattr(s, "a")
    t = Temperature()
    t.celsius = 21
    t.celsius += 1
    yield t.celsius, t.log
    del t.celsius
    yield caught(lambda: t.celsius), caught(lambda: t.broken), t.log
    f = Fallback()
    yield f.broken, f.anything, f.celsius
    tr = Tracked()
    tr.x += 1
    tr.y = tr.dyn_hello
    del tr.y
    yield caught(lambda: tr.nothing), getattr(tr, "y", "default"), tr.events
    target = Tracked()
    proxy = weakref.proxy(target)  # a C type that forwards every attribute access
    proxy.x += 1
    yield proxy.x, target.events
    del target
    yield caught(lambda: proxy.x)
    fz = Frozen(1)
    yield caught(lambda: setattr(fz, "a", 2)), fz, dataclasses.replace(fz, b="c")
    err = caught(lambda: Box(1).nope)
    try:
        Box(1).nope
    except AttributeError as exc:
        yield err, exc.name, type(exc.obj).__name__


# -- super ---------------------------------------------------------------------------------

class Base:
    greeting = "base"

    def __init__(self, n, extra=None):
        self.n = n

    def describe(self):
        return f"Base({self.n})"

    @classmethod
    def kind(cls):
        return f"kind {cls.__name__}"

    @classmethod
    def make(cls, n):
        return cls(n)

    @property
    def label(self):
        return f"label {self.n}"

    def __init_subclass__(cls, tag="none", **kwargs):
        super().__init_subclass__(**kwargs)
        cls.tag = tag


class Derived(Base, tag="derived"):
    greeting = "derived"

    def __init__(self, n, extra=None):
        super().__init__(n)
        self.extra = extra

    def describe(self):
        return (f"Derived[{super().describe()} {super(Derived, self).describe()} "
                f"{super().greeting} {self.greeting}]")

    @classmethod
    def kind(cls):
        return "derived " + super().kind()

    @classmethod
    def make(cls, n):
        made = super(Derived, cls).make(n)
        made.extra = "made"
        return made

    @property
    def label(self):
        return super().label.upper()

    def missing_on_super(self):
        return super().nope


class Leaf(Derived, tag="leaf"):
    def describe(self):
        return "Leaf/" + super().describe()


@section
def supers():
    d = Derived(3, "x")
    yield d.describe(), Derived.kind(), d.label, Derived.tag, getattr(Base, "tag", None)
    m = Leaf.make(4)
    yield m.describe(), m.extra, Leaf.kind(), Leaf.tag
    yield caught(d.missing_on_super)


# -- assorted attribute syntax ------------------------------------------------------------

class Holder:
    shared = []
    count = 0

    def __init__(self):
        self.cb = lambda v: v * 2
        self.handlers = {"len": len}
        self.inner = Box(5)
        self.n = 0
        self.items = []
        self.d = {"k": 1}

    @classmethod
    def register(cls, item):
        cls.shared.append(item)
        cls.count += 1


def traced(tag):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            wrapper.calls += 1
            return f"{tag}:{fn(*args, **kwargs)}"
        wrapper.calls = 0
        return wrapper
    return deco


@traced("t")
def add(a, b):
    return a + b


def keywords(a, b, *, c=0, **rest):
    return (a, b, c, sorted(rest.items()))


def documented(box):
    "A docstring, which must stay the first constant."
    return box.value


def undocumented(box):
    return "a first constant that is no docstring " + box.value


def bump_global(box):
    global COUNTER
    COUNTER += box.value
    return COUNTER


@section
def syntax():
    o = Box(3)
    o.extra = "e"
    del o.extra
    yield hasattr(o, "extra")
    for o.value in range(3):
        o.log.append(o.value)
    yield o.value, o.log
    yield f"{o.value!r:>4}|{o.log[-1]:03d}|{o.value * 2 = }|{o.method_kw(a=o.value)}"
    yield keywords(a=o.value, b=o.log, c=o.value + 1), keywords(o.value, b=o.value, z=o.log)
    yield o.method_kw(a=o.value, b=o.value, c=o.value), dict(x=o.value, y=len(o.log))
    yield keywords(*o.log[:2], **{"c": o.value, "d": o.value})
    h = Holder()
    yield h.cb(4), h.handlers["len"]("xyz"), h.cb(v=h.cb(1)), h.inner.method_kw(h.n, c=h.n)
    h.n += 1
    h.n *= 5
    h.items += [h.n]
    h.inner.value -= 2
    h.d["k"] += h.n
    yield h.n, h.items, h.inner.value, h.d
    Holder.register("a")
    Holder.count += 10
    Holder.extra_class_attr = "x"
    del Holder.extra_class_attr
    h.shared = "shadow"
    yield Holder.shared, Holder.count, h.shared, type(h).shared is Holder.shared
    yield add(1, 2), add(b=3, a=4), add.calls, add.__name__, add.__wrapped__.__name__
    yield 0 < o.value <= 5 < o.value * 10, o.value < h.n < h.inner.value, o.value == 2 != h.n
    if (n := len(o.log)) > 2 and (v := o.value):
        yield n, v
    yield (o.missing if False else o.value), (o.log and o.log[0] or h.n), (lambda q=o.value: q)()
    o.a, o.b = o.value, o.log
    o.a, o.b = o.b, o.a
    o.head, *o.rest = range(4)
    yield o.a, o.b, o.head, o.rest
    yield bump_global(o), bump_global(h.inner), COUNTER
    yield documented.__doc__, undocumented.__doc__, (lambda b: "x" + b.value).__doc__
    yield (h
           .inner
           .method_kw(
               o
               .value,
               c=h.inner
               .value))
    i = 0
    while h.n > 0:
        h.n -= 4
        i += 1
    yield i, h.n


# -- containers, globals, closures, imports ------------------------------------------------

class Key:
    """A dict key that logs its hash and equality calls: nobody but the dict may make them."""

    calls = []

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        Key.calls.append(("hash", self.name))
        return hash(self.name)

    def __eq__(self, other):
        Key.calls.append(("eq", self.name))
        return isinstance(other, Key) and other.name == self.name

    def __repr__(self):
        return f"Key({self.name!r})"


class Store:
    """A user container whose protocol methods log every call."""

    def __init__(self):
        self.items = {}
        self.log = []

    def __getitem__(self, key):
        self.log.append(("get", key))
        return self.items[key]

    def __setitem__(self, key, value):
        self.log.append(("set", key))
        self.items[key] = value

    def __delitem__(self, key):
        self.log.append(("del", key))
        del self.items[key]

    def __contains__(self, key):
        self.log.append(("in", key))
        return key in self.items

    def __iter__(self):
        self.log.append(("iter",))
        return iter(self.items)

    def __len__(self):
        self.log.append(("len",))
        return len(self.items)


class LoggingNamespace(dict):
    log = []

    def __getitem__(self, key):
        LoggingNamespace.log.append(("get", key))
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        LoggingNamespace.log.append(("set", key))
        super().__setitem__(key, value)


class Prepared(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return LoggingNamespace()


class Body(metaclass=Prepared):
    first = 1
    second = first + 1


def unbound_cell():
    value = 1

    def read():
        return value
    del value
    return read()


def bad_import():
    from os import nothing_here  # noqa: F401 - fails on purpose
    return nothing_here


def nested_import():
    import os.path as osp
    from collections import abc
    return osp.basename("/a/b"), abc.Mapping.__name__


class BadHash:
    def __hash__(self):
        raise TypeError("no hash for you")


@section
def containers():
    d = {}
    a, b, a_again = Key("a"), Key("b"), Key("a")
    d[a] = 1
    d[b] = 2
    d[a_again] += 10
    found = a in d, b not in d
    del d[b]
    yield d[a], found, len(d), caught(lambda: d[b]), Key.calls
    lst = list(range(10))
    lst[2:5] = ["x"]
    del lst[::3]
    lst[-1] += 100
    yield lst, lst[1:3], 5 in lst, [i for i in lst if i in (1, 2)], caught(lambda: lst[99])
    store = Store()
    store["k"] = 1
    store["k"] += 1
    yield "k" in store, list(store), len(store), store["k"], sorted(store), dict.fromkeys(store)
    del store["k"]
    yield store.log
    it = iter([1, 2, 3, 4])
    yield 2 in it, list(it), caught(lambda: {}[[]]), caught(lambda: {}[BadHash()])
    dd = collections.defaultdict(list)
    dd["x"].append(1)
    dd["y"] += [2]
    counts = collections.Counter("abracadabra")
    counts["z"] += 0
    yield sorted(dd.items()), counts.most_common(2), counts["q"], "q" in counts
    text, raw, deq = "hello", bytearray(b"abc"), collections.deque([1, 2, 3])
    raw[0] = ord("z")
    deq[1] *= 10
    yield text[1], text[1:3], "ll" in text, raw, deq, (a == a_again, a != b, [a] == [a_again])


@section
def lifetimes():
    """Objects die when the program drops them, not when racewatch's tables do."""
    for make in (dict, list, Slotted):
        node = Box(make.__name__)
        holder = make(0) if make is Slotted else make()
        if make is dict:
            holder["node"] = node
            holder["node"] = holder["node"]
        elif make is list:
            holder.append(node)
            holder[0] = holder[0]
        else:
            holder.b = node
        alive = weakref.ref(node)
        del holder, node
        yield make.__name__, alive() is None


@section
def scopes():
    yield bump_global(Box(1)), COUNTER, caught(lambda: undefined_global_name)  # noqa: F821
    yield caught(unbound_cell), caught(bad_import), nested_import()
    yield Body.second, LoggingNamespace.log


@section
def threads():
    box = Box(0)
    box.lock = threading.Lock()

    def work(k):
        for _ in range(100):
            with box.lock:
                box.value += k
    workers = [threading.Thread(target=work, args=(k,)) for k in range(1, 4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    yield box.value


class NotALock:
    """Spells the lock protocol, so lock call sites see it; it must stay itself."""

    def acquire(self, blocking=True):
        return ("acquired", blocking)

    def release(self):
        return "released"

    def __enter__(self):
        return "entered"

    def __exit__(self, *exc):
        return False


@section
def locks():
    lock = threading.Lock()
    with lock as entered:
        yield entered, lock.locked(), lock.acquire(blocking=False), lock.acquire(timeout=0)
    yield lock.locked(), lock.acquire(), caught(lock.release), caught(lambda: lock.release())
    rlock = threading.RLock()
    with rlock, rlock as again:
        yield again, rlock.acquire(False), rlock.release()
    yield caught(rlock.release)
    cond = threading.Condition(threading.Lock())
    with cond:
        yield cond.wait(timeout=0), cond.wait_for(lambda: cond is not None, timeout=0)
    sem = threading.BoundedSemaphore(1)
    yield sem.acquire(), sem.acquire(blocking=False), sem.release(), caught(sem.release)
    other = NotALock()
    with other as what:
        yield what, other.acquire(False), other.release(), type(other.acquire).__name__
    release = lock.release
    yield lock.acquire(), release(), lock.locked()
    holder = Box(lock)
    gen = _hold(holder)
    yield next(gen), lock.locked()
    gen.close()
    yield lock.locked(), holder.log


def _hold(holder):
    with holder.value:
        try:
            yield "holding"
        finally:
            holder.log.append("closed while holding")


# -- settrace mode ----------------------------------------------------------------------------

class Tracer:
    """Records (file, event, function, line[, exception]) for frames of the given files only."""

    def __init__(self, files):
        self.files = {f: os.path.basename(f) for f in files}
        self.events = []

    def __call__(self, frame, event, arg):
        name = self.files.get(frame.f_code.co_filename)
        if name is None:
            return None
        record = (name, event, frame.f_code.co_name, frame.f_lineno)
        if event == "exception":
            record += (arg[0].__name__,)
        self.events.append(record)
        return self

    def start(self):
        sys.settrace(self)

    def stop(self):
        sys.settrace(None)
        for record in self.events:
            print(*record)
