"""The pass on constructs each Python version spells differently (rewriter/opcodes.py): every
one gets its probe, and a code object the pass cannot handle is said once per module."""


import pytest

from racewatch import env
from racewatch.rewriter import instrument, sites
from racewatch.runtime import null


def _rewrite(source):
    del instrument.FAILURES[:]
    code = compile(source, "<t>", "exec")
    code, records, _layout = instrument.instrument_module(code, None)
    assert instrument.FAILURES == []
    return code, records


def _kinds(records, function):
    return sorted(kind for _line, name, kind, _key in records if name == function)


def test_with_statement_has_no_probe_on_every_version():
    """Locks report their own acquire and release (runtime/lockhooks.py): `with` is left as
    it is, and so is `async with`."""
    _code, records = _rewrite("def f(lock, o):\n    with lock:\n        o.x = 1\n")
    assert _kinds(records, "f") == ["write"]
    source = ("class G:\n"
              "    async def __aenter__(self):\n        return self.lock.__enter__()\n"
              "async def f(guard, o):\n    async with guard:\n        o.x = 1\n")
    _code, records = _rewrite(source)
    assert _kinds(records, "f") == ["write"]
    assert _kinds(records, "G.__aenter__") == ["read", "read"]


@pytest.mark.parametrize("expression", ["d[k]", "d[1:2]", "d[a:b]", "d[a:]"])
def test_item_and_slice_reads_are_probed(expression):
    # the kind depends on the version's spelling (3.11: a slice key; 3.12+: BINARY_SLICE;
    # 3.14+: a constant slice is a key of BINARY_OP), and the runtime reads each alike
    _code, records = _rewrite(f"def f(d, k, a, b):\n    return {expression}\n")
    assert _kinds(records, "f") in (["item_read"], ["slice_read"])


def test_arithmetic_is_not_an_item_read():
    # (3.14+ spells both with BINARY_OP) `a - b * 2` is no access; `a + b * 2` may concatenate
    _code, records = _rewrite("def f(a, b):\n    return a - b * 2\n")
    assert _kinds(records, "f") == []
    _code, records = _rewrite("def f(a, b):\n    return a + b * 2\n")
    assert _kinds(records, "f") == ["concat"]


def test_a_parameter_that_is_a_closure_cell_is_probed():
    source = ("def f(total):\n"
              "    def add():\n        nonlocal total\n        total += 1\n"
              "    total += 10\n    return add\n")
    _code, records = _rewrite(source)
    assert _kinds(records, "f") == ["cell_read", "cell_write"]
    assert _kinds(records, "f.<locals>.add") == ["cell_read", "cell_write"]


def test_rewritten_closure_cell_parameter_runs():
    del instrument.FAILURES[:]
    source = ("def f(total):\n    def add():\n        return total\n"
              "    total += 10\n    return add()\n")
    code, _records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None)
    assert instrument.FAILURES == []
    namespace = {}
    exec(sites.relocate(code, layout, 0, lambda *site: null.Token()), namespace)
    assert namespace["f"](1) == 11


@pytest.mark.parametrize("source, function", [
    ("def f(xs):\n    return [x for x in xs]\n", "f"),
    ("def f(xs):\n    for x in xs:\n        pass\n", "f"),
    ("def f(xs):\n    yield from xs\n", "f")])
def test_iteration_is_probed(source, function):
    _code, records = _rewrite(source)
    assert "iter" in _kinds(records, function)


def test_compare_with_a_constant_is_not_probed():
    _code, records = _rewrite("def f(x, y):\n    return x == 0, x == None, x == 'a', x == y\n")
    assert _kinds(records, "f") == ["compare"]


def test_a_code_object_the_pass_cannot_handle_is_said_once_per_module(monkeypatch, capsys):
    real = instrument._Pass._rewrite_one

    def fails_on_g(self, code):
        if code.co_name in ("g", "h"):
            raise ValueError("odd code")
        return real(self, code)

    monkeypatch.setattr(instrument._Pass, "_rewrite_one", fails_on_g)
    del instrument.FAILURES[:]
    source = "def f(o):\n    return o.x\ndef g(o):\n    return o.y\ndef h(o):\n    return o.z\n"
    code, records, _layout = instrument.instrument_module(compile(source, "m.py", "exec"),
                                                          "m.py")
    err = capsys.readouterr().err
    assert err == "racewatch: warning: m.py: g (and 1 more) not instrumented, runs as " \
                  "compiled: ValueError: odd code\n"
    assert [name for name, _error in instrument.FAILURES] == ["g", "h"]
    assert _kinds(records, "f") == ["read"]
    del instrument.FAILURES[:]


def test_imports_and_lazy_names_hand_over_their_module():
    """After an import, and after a load of a name a `lazy import` bound, an `imported` token
    probe; at the end of a module's top-level code, an `initialized` one (runtime/imports.py)."""
    del instrument.FAILURES[:]
    source = "import os\ndef f():\n    import json\n    return json, lazy_mod\n"
    instrument_pass = instrument._Pass(sites.ModuleSites(), None, None, lazy={"lazy_mod"})
    code = compile(source, "<t>", "exec")
    instrument_pass.root = code
    new_code, _layout = instrument_pass.rewrite(code)
    assert instrument.FAILURES == []
    kinds = sorted((r[1], r[2]) for r in instrument_pass.sites.records
                   if r[2] in ("imported", "initialized"))
    assert kinds == [("<module>", "imported"), ("<module>", "initialized"),  # os, the end
                     ("f", "imported"), ("f", "imported")]  # json, lazy_mod


@pytest.mark.skipif(not env.PY314_PLUS, reason="t-strings are 3.14 syntax")
def test_template_strings_are_rewritten_and_run_alike():
    """`bytecode` cannot decode most BUILD_INTERPOLATION arguments by itself (opcodes.raw_args)."""
    source = 'def f(o, x):\n    return o.a, t"{x!s} {x:>3} {x!r:<{o.w}} {x}"\n'
    del instrument.FAILURES[:]
    code, records, layout = instrument.instrument_module(compile(source, "<t>", "exec"), None)
    assert instrument.FAILURES == []
    assert _kinds(records, "f") == ["read", "read"]
    namespace = {}
    exec(sites.relocate(code, layout, 0, lambda *site: null.Token()), namespace)
    plain = {}
    exec(compile(source, "<t>", "exec"), plain)

    class O:
        a, w = 1, 5

    got, expected = namespace["f"](O(), 42), plain["f"](O(), 42)
    assert got[1].strings == expected[1].strings
    assert [(i.value, i.expression, i.conversion, i.format_spec) for i in got[1].interpolations] \
        == [(i.value, i.expression, i.conversion, i.format_spec)
            for i in expected[1].interpolations]
