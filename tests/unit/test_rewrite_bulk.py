"""The rewriter's probes of bulk reads: concatenations (skipped where an operand cannot be a
list-like) and the value a slice assignment reads."""

import pytest

from racewatch import env
from racewatch.rewriter import instrument


def kinds(source, path=None):
    """The site kinds of the accesses function f of rewritten `source` probes, in order (with
    the module's file, which tells what its globals are)."""
    if path is not None:
        path.write_text(source)
    code = compile(source, str(path or "<t>"), "exec")
    _code, records, _layout = instrument.instrument_module(code, path and str(path))
    assert not instrument.FAILURES
    return [kind for _line, function, kind, _name in records if function == "f"]


@pytest.mark.parametrize("body, expected", [
    ("return a + b", ["concat"]),
    ("a += b", ["concat_inplace"]),
    ("a += 'xy'", ["concat_inplace"]),          # a list extended by a string's characters
    ("a += (1, 2)", ["concat_inplace"]),
    ("return a + (1, 2)", []),                  # a list-like + a tuple raises
    ("return a + 'xy'", []),
    ("return a + b'xy'", ["concat"]),           # bytearray + bytes
    ("return a + 1", []),
    ("a += 1", []),
    ("return a + None", []),
    ("return 1 + a", []),
    ("return a // 2 + b", []),                  # an arithmetic result on the left
    ("return a * 2 + b", ["concat"]),           # [0] * n + b is a list
    ("return a - b", []),
])
def test_concatenation_probes(body, expected):
    assert kinds(f"def f(a, b, c, d):\n    {body}\n") == expected


def test_an_operand_from_a_jump_is_probed():
    """Where a jump lands between the operands, nothing is known of them (3.12+ repeat the
    addition on each branch)."""
    assert set(kinds("def f(a, b, c, d):\n    return a + (b if c else d)\n")) == {"concat"}


# PYVERSIONS: 3.11 slices through BUILD_SLICE (a key), 3.12+ with BINARY_SLICE/STORE_SLICE,
# but 3.14+ loads a constant slice as a key
SLICE = "slice" if env.PY312_PLUS else "item"
CONSTANT_SLICE = "item" if env.PY314_PLUS else SLICE


@pytest.mark.parametrize("body, expected", [
    ("a[0:2] = b", [f"{CONSTANT_SLICE}_write", "iter"]),
    ("a[i:] = b", [f"{SLICE}_write", "iter"]),
    ("a[::2] = b", ["item_write", "iter"]),
    ("a[i] = b", ["item_write"]),
    ("return a[0:2]", [f"{CONSTANT_SLICE}_read"]),
])
def test_a_slice_assignment_reads_the_value(body, expected):
    assert kinds(f"def f(a, b, i):\n    {body}\n") == expected


@pytest.mark.parametrize("body, probes", [
    ("total = 0.0\n    for x in a:\n        total += x * 2\n    return total", 0),
    ("n = len(a)\n    return n + b", 0),
    ("for i in range(b):\n        c = i + d\n    return c", 0),
    ("dx = a - b\n    return dx * dx + c", 0),
    ("x = a\n    return x + b", 1),                  # a parameter: anything
    ("x = 0\n    x = a\n    return x + b", 1),      # one store of anything is enough
    ("x = [0] * b\n    return x + c", 1),           # a list
    ("total = 0\n    total += a\n    return total + b", 0),  # a number plus anything
    ("c = a + b\n    return a - 1", 0),             # a list-like has no `-`: a is a number
    ("c = a + b\n    return d // 2 + a", 0),        # a number plus a: a is one too
    ("c = a + b\n    return b - 1", 1),             # b being a number says nothing of a
    ("c = a + b\n    return a % 2", 1),             # bytearray % x formats
])
def test_locals_that_never_hold_a_list_like(body, probes, tmp_path):
    found = kinds(f"def f(a, b, c, d):\n    {body}\n", tmp_path / "mod.py")
    assert found.count("concat") + found.count("concat_inplace") == probes


@pytest.mark.parametrize("where", ["rebound", "no source"])
def test_builtins_are_trusted_only_where_the_module_leaves_them(where, tmp_path):
    source = "def f(a, b, c, d):\n    n = len(a)\n    return n + b\n"
    if where == "rebound":
        found = kinds(source + "len = lambda x: [x]\n", tmp_path / "mod.py")
    else:
        found = kinds(source)
    assert found.count("concat") == 1
    assert "concat" not in kinds(source, tmp_path / "other.py")
