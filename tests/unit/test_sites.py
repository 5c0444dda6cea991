"""Site ids: module-local while rewriting, relocated at load without touching user constants."""

import marshal
import pickle

from racewatch.rewriter import instrument, sites
from racewatch.runtime import api, null
from tests.helpers import RUNTIME


def _consts(code):
    yield code.co_consts
    for const in code.co_consts:
        if hasattr(const, "co_consts"):
            yield from _consts(const)


def _token(site, is_write, key, line):
    return ("token", site, is_write, key)


def _tokens(code):
    return [c for consts in _consts(code) for c in consts if isinstance(c, tuple)
            and c[:1] == ("token",)]


def test_relocation_leaves_equal_user_constants_alone():
    # floats: equal to the site ids 0 and 1, and in co_consts on every version (3.14 loads
    # small ints with LOAD_SMALL_INT instead)
    source = "def f(o):\n    return (o.a, 0.0, 1.0, 2.0, 3.0, o.b)\n"
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None)
    # f's two sites are 0 and 1, equal in value to the user's constants 0 and 1
    assert [r[3] for r in records[:2]] == ["a", "b"]
    moved = sites.relocate(code, layout, 1000, _token)
    inner = [c for c in moved.co_consts if hasattr(c, "co_code")][0]
    assert {("token", 1000, False, "a"), ("token", 1001, False, "b")} <= set(inner.co_consts)
    # the tuple's own constants are unchanged
    assert [c for c in inner.co_consts if type(c) is float] == [0.0, 1.0, 2.0, 3.0]


def test_token_sites_say_read_or_write():
    source = "def f(o, lock):\n    o.a = o.b\n    with lock:\n        pass\n"
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None)
    moved = sites.relocate(code, layout, 10, _token)
    kinds = {r[2]: 10 + i for i, r in enumerate(records)}
    assert {("token", kinds["read"], False, "b"), ("token", kinds["write"], True, "a")} <= \
        set(_tokens(moved))
    assert "sync" not in kinds  # `with lock:` has no probe: locks report their own events


def test_rewritten_code_marshals_and_relocates_after_a_round_trip():
    source = "class C:\n    def m(self):\n        return [self.x for _ in range(2)]\n"
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None)
    again = marshal.loads(marshal.dumps(code))
    moved = sites.relocate(again, layout, 50, _token)
    # every site is a token's but the module's end (`initialized`, a called probe)
    assert sorted(t[1] for t in _tokens(moved)) == [50 + site for site, r in enumerate(records)
                                                     if r[2] != "import"]


def test_register_returns_consecutive_bases():
    table = sites.SiteTable()
    first = table.register("a.py", [(1, "f", "read", "x"), (2, "f", "write", "x")])
    second = table.register("b.py", [(3, "g", "read", "y")])
    assert (first, second) == (1, 3)
    assert table[second] == sites.Site("b.py", 3, "g", "read", "y")


def test_a_code_object_is_never_rewritten_twice():
    code, _, _ = instrument.instrument_module(compile("def f(o):\n    return o.x\n", "<t>",
                                                      "exec"), None)
    again, records, _ = instrument.instrument_module(code, None)
    assert records == () and again is code


def test_line_probes_are_hit_tokens():
    source = "def f(o):\n    x = 1\n    return x\n"
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None,
                                                         race=False, line_probes=True)
    moved = sites.relocate(code, layout, 7, _token)
    lines = sorted(7 + i for i, r in enumerate(records) if r[2] == "line")
    assert lines and sorted(t[1] for t in _tokens(moved)) == lines
    assert {t[2:] for t in _tokens(moved)} == {(None, None)}  # is_write None: a hit token


def test_a_pickled_race_token_is_inert():
    engines = [api]
    if RUNTIME == "c":
        from racewatch.runtime import _fast
        engines.append(_fast)
    for engine in engines:
        copy = pickle.loads(pickle.dumps(engine.token(1, True, "x")))
        assert type(copy) is null.Token
        assert (0 in copy, ~copy) == (False, None)


def _line_sites(records, line):
    return [i for i, r in enumerate(records) if r[2] == "line" and r[0] == line]


def _merged_tokens(source):
    """{record name: line record of the line it counts} for the merged probes of `source`, and
    the hit tokens' sites, after a marshal round trip (the cache's) and relocation by 0."""
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None,
                                                         race=True, line_probes=True)
    code, layout = marshal.loads(marshal.dumps((code, layout)))
    found = []
    sites.relocate(code, layout, 0, lambda *token: found.append(token))
    merged = {records[site][3]: records[line] for site, _, _, line in found
              if line is not None}
    hits = {records[site][0] for site, is_write, _, _ in found if is_write is None}
    return merged, hits, records


def test_a_line_starting_with_an_access_is_counted_by_the_access_token():
    merged, hits, records = _merged_tokens("def f(o):\n    x = o.a\n    return x\n")
    assert merged == {"a": (2, "f", "line", "")}  # the read of o.a counts line 2
    assert 2 not in hits and 3 in hits  # line 3 has no access: its own probe
    assert _line_sites(records, 2)  # the line is still a probed line for the collector


def test_a_line_whose_first_load_may_raise_keeps_its_own_probe():
    # `y` may be unbound: its load can raise before the access, after the line event
    source = "def f(o):\n    if o:\n        y = o\n    return y.a\n"
    merged, hits, _ = _merged_tokens(source)
    assert "a" not in merged and 4 in hits
