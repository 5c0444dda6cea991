"""Control-flow shapes for the coverage line-event oracle: each is called, its result printed."""

import asyncio
import contextlib
import functools


def loops(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            continue
        if i == 7:
            break
        total += i
    else:
        total = -1
    j = 0
    while j < n:
        j += 2
        if j == 100:
            break
    else:
        total += 1
    k = 5
    while k: k -= 1
    for x in range(3): total += x
    for a in range(2):
        for b in range(2):
            total += a * b
    return total


def one_liners(n):
    r = [i for i in range(n) if i % 2]; s = {i: i for i in range(3)}
    t = (lambda v: v + 1)(n) if n else 0
    u = n > 2 and n < 10 or n == 0
    if n: v = 1
    else: v = 2
    while n > 10: n -= 1
    return r, s, t, u, v


def conditionals(x):
    y = (1 if x > 0
         else 2)
    z = [
        x,
        y if x else -y,
        x * 2,
    ]
    result = (x
              + y
              + len(z))
    return result, z


def trying(n):
    out = []
    for i in range(n):
        try:
            if i % 2:
                raise ValueError(i)
            out.append(i)
        except ValueError as exc:
            out.append(-exc.args[0])
        except (KeyError, TypeError):
            out.append(None)
        else:
            out.append("else")
        finally:
            out.append("finally")
    try:
        try:
            1 / 0
        finally:
            out.append("inner finally")
    except ZeroDivisionError:
        out.append("zde")
    return out


def finally_flow(n):
    for i in range(n):
        try:
            if i == 1:
                continue
            if i == 3:
                break
        finally:
            n += 1
    try:
        return n
    finally:
        n = 0


def star(n):
    out = []
    try:
        raise ExceptionGroup("g", [ValueError(1), TypeError(2), KeyError(3)])
    except* ValueError as eg:
        out.append(len(eg.exceptions))
    except* TypeError:
        out.append("type")
    except* KeyError:
        out.append("key")
    return out


class CM:
    def __init__(self, log, swallow=False):
        self.log = log
        self.swallow = swallow

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, *exc):
        self.log.append(("exit", exc[0].__name__ if exc[0] else None))
        return self.swallow


def withs(n):
    log = []
    with CM(log) as a, CM(log) as b:
        log.append(a is not b)
    with CM(log, swallow=True):
        raise RuntimeError("swallowed")
    try:
        with CM(log):
            raise KeyError(n)
    except KeyError:
        log.append("escaped")
    with CM(log): log.append("one line")
    with contextlib.suppress(ZeroDivisionError): 1 / 0
    return log


def gen(n):
    for i in range(n):
        got = yield i
        if got:
            yield got * 10
    return n


def gens(n):
    g = gen(n)
    out = [next(g), g.send(3), next(g), next(g)]
    out += list(gen(2))
    out.append(sum(x * x for x in range(n)))
    def sub():
        r = yield from gen(3)
        yield r
    out += list(sub())
    g2 = gen(5)
    next(g2)
    try:
        g2.throw(ValueError("x"))
    except ValueError:
        out.append("thrown")
    return out


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


class ACM:
    async def __aenter__(self):
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc):
        return False


async def amain(n):
    out = []
    async for v in agen(n):
        out.append(v)
    async with ACM():
        out.append("in")
    out.append([v async for v in agen(2)])
    results = await asyncio.gather(*(asyncio.sleep(0, result=i) for i in range(3)))
    return out, results


def asyncs(n):
    return asyncio.run(amain(n))


def comprehensions(n):
    a = [i * j for i in range(n) for j in range(i) if j % 2 == 0]
    b = {i: [j for j in range(i)] for i in range(n)}
    c = {
        i
        for i in range(n)
        if i
    }
    d = list(
        (i, j)
        for i in range(2)
        for j in range(2)
    )
    return a, b, c, d


def matching(values):
    out = []
    for v in values:
        match v:
            case 0 | 1:
                out.append("small")
            case [x, y, *rest] if x < y:
                out.append(("seq", x, y, rest))
            case {"k": kv}:
                out.append(("map", kv))
            case str() as s:
                out.append(("str", s))
            case CM(log=lg):
                out.append("cm")
            case _:
                out.append("other")
    return out


def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args) + 1
    return wrapper


@deco
@functools.lru_cache(maxsize=None)
def decorated(n):
    return n * 2


class Klass:
    attr = [i for i in range(3)]

    @property
    def prop(self):
        return self.attr[0]

    @staticmethod
    def stat(x):
        return x

    @classmethod
    def clsm(cls, x):
        return cls.stat(x)


def lambdas(n):
    f = lambda x: x * 2
    g = lambda x: (
        x + 1
    )
    h = sorted(range(n), key=lambda v: -v)
    return f(n), g(n), h, list(map(lambda z: z + 1, range(3)))


def recursion(n):
    if n <= 1:
        return 1
    return n * recursion(n - 1)


def errors_out(n):
    if n:
        raise LookupError(n)


def uncaught(n):
    try:
        errors_out(n)
    except LookupError:
        return "caught below"


def walrus_and_asserts(values):
    out = []
    while (v := values.pop()) != 0:
        out.append(v)
    assert out, "never empty"
    del v
    return out


def nesting(n):
    def outer(x):
        y = x + 1

        def inner():
            nonlocal y
            y += 1
            return y
        return inner() + inner()

    class Local:
        value = n * 2

        def method(self):
            return self.value
    return outer(n), Local().method()


def loops_with_exits(n):
    out = []
    for i in range(n):
        try:
            if i == 1:
                continue
            if i == 4:
                break
            out.append(i)
        finally:
            out.append(-i)
    else:
        out.append("no break")
    while True:
        try:
            n -= 1
            if n < 0:
                raise StopIteration
        except StopIteration:
            break
        finally:
            out.append(n)
    return out


def generator_protocols(n):
    def counter():
        total = 0
        try:
            while True:
                got = yield total
                total += got or 1
        except GeneratorExit:
            pass
        finally:
            total = -1
    g = counter()
    next(g)
    values = [g.send(i) for i in range(n)]
    g.close()
    return values


COUNTER = 0


class Box:
    def __init__(self, value):
        self.value = value
        self.items = [value]

    def bump(self, n):
        while self.value < n:  # a loop's test: entered by the jump back too
            self.value += 1
        return self.value


def merged_probes(n):
    """Lines whose first access is a race probe's (the line may be counted by that probe):
    attributes, globals, cells and items after loads that may or may not raise."""
    global COUNTER
    box = Box(n)
    cell = [0]

    def inner():
        cell[0] += 1
        return cell
    for i in range(n):
        COUNTER += 1
        box.value = box.value + i
        box.items[0] = i
        inner()
    if n > 100:
        maybe = Box(1)
    try:
        maybe.value  # UnboundLocalError before the access: the line still ran
    except UnboundLocalError:
        pass
    victim = box
    del victim
    try:
        victim.value
    except UnboundLocalError:
        pass
    return box.bump(n + 3), COUNTER, cell[0], box.items, deleted_argument(box)


def deleted_argument(box):
    del box
    try:
        box.value  # the argument is gone: LOAD_FAST raises before the access
    except UnboundLocalError:
        return "unbound"


def main():
    print(loops(12))
    print(one_liners(4))
    print(conditionals(3))
    print(trying(4))
    print(finally_flow(5))
    print(star(1))
    print(withs(2))
    print(gens(4))
    print(asyncs(3))
    print(comprehensions(4))
    print(matching([0, [1, 2, 3], {"k": 5}, "s", CM([]), 3.5, [2, 1]]))
    print(decorated(3), decorated(3))
    k = Klass()
    print(k.prop, Klass.stat(1), Klass.clsm(2))
    print(lambdas(4))
    print(recursion(5))
    print(uncaught(1))
    print(walrus_and_asserts([0, 1, 2]))
    print(nesting(3))
    print(loops_with_exits(6))
    print(generator_protocols(4))
    print(merged_probes(4))


if __name__ == "__main__":
    main()
