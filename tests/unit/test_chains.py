"""Chained line probes (rewriter/chains.py): which lines chain, that chained code behaves as
before, and how a running frame inside an escape region is found (cover/escapes.py)."""

import array
import importlib
import marshal
import os
import sys
import traceback

import pytest

from racewatch.cover import escapes
from racewatch.rewriter import instrument, sites
from tests import helpers
from tests.helpers import RUNTIME


def _rewrite(source, race=False):
    code = compile(source, "<t>", "exec")
    return instrument.instrument_module(code, None, race=race, line_probes=True, chained=True)


def _kinds(records):
    """{line: kind} of the line records (a line with two probes keeps its last)."""
    return {line: kind for line, _function, kind, _name in records
            if kind in ("line", "line_chained")}


def test_straight_lines_chain_and_branches_loops_and_handlers_start_again():
    source = ("def f(o, n):\n"         # 1
              "    a = o + 1\n"         # 2 first line: its own probe
              "    b = a * 2\n"         # 3 chained to 2
              "    if b:\n"             # 4 chained to 3 (the jump ends the chain)
              "        c = 1\n"         # 5 after a jump: its own probe
              "    for i in n:\n"       # 6 a jump target: its own probe
              "        d = i\n"         # 7 after FOR_ITER (a jump): its own probe
              "        e = d\n"         # 8 chained to 7
              "    try:\n"              # 9
              "        g = o.x\n"       # 10 chained to 9: its probe precedes the region
              "        h = g\n"         # 11 inside the program's handler region: its own
              "    except AttributeError:\n"
              "        pass\n"
              "    return a\n")
    code, records, layout = _rewrite(source)
    kinds = _kinds(records)
    assert kinds[3] == kinds[4] == kinds[8] == kinds[10] == "line_chained"
    assert kinds[2] == kinds[5] == kinds[7] == kinds[11] == "line"
    assert instrument.FAILURES == []


def test_a_yield_ends_a_chain():
    source = ("def g(o):\n"
              "    a = o + 1\n"
              "    yield a\n"
              "    b = a + 1\n"  # the generator may never come back: never counted from 3
              "    yield b\n")
    _code, records, _layout = _rewrite(source)
    assert _kinds(records)[4] == "line"


def test_chained_records_name_their_sites_relatively_and_survive_marshal():
    code, records, layout = _rewrite("def f(o):\n    a = o + 1\n    b = a * 2\n    return b\n")
    code, records, layout = marshal.loads(marshal.dumps((code, records, layout)))
    by_line = {line: (site, kind, name) for site, (line, _f, kind, name) in enumerate(records)
               if kind.startswith("line") and kind != "line_escape"}
    site, kind, (previous, escape) = by_line[3]
    assert kind == "line_chained" and records[site + previous][0] == 2  # counted from line 2
    assert records[site + escape][2] == "line_escape"
    assert by_line[4][1] == "line_chained"


@pytest.mark.parametrize("race", [False, True], ids=["no-race", "race"])
@pytest.mark.parametrize("program", ["cover_shapes.py", "torture.py", "torture_lib.py",
                                     "cover_chains.py"])
def test_corpora_rewrite_without_failures(program, race):
    path = os.path.join(helpers.PROGRAMS, program)
    with open(path) as f:
        code = compile(f.read(), path, "exec")
    del instrument.FAILURES[:]
    _code, records, _layout = instrument.instrument_module(code, path, race=race,
                                                           line_probes=True, chained=True)
    assert instrument.FAILURES == []
    assert any(kind == "line_chained" for _l, _f, kind, _n in records)


def _load(source, name):
    """Run `source` rewritten with chains, every token a counting stand-in."""
    code, records, layout = _rewrite(source)
    code = sites.relocate(code, layout, 0, lambda site, *rest: _Token(site))
    namespace = {"__name__": name}
    exec(code, namespace)
    return namespace, records


class _Token:
    """Counts ~token, and tells its site, as the collector's hit tokens do."""

    runs = {}

    def __init__(self, site):
        self.site = site

    def __invert__(self):
        _Token.runs[self.site] = _Token.runs.get(self.site, 0) + 1


def test_a_raise_between_two_lines_counts_an_escape_and_keeps_the_traceback():
    source = ("def f(a, b):\n"
              "    c = a + 1\n"
              "    d = c // b\n"
              "    return d\n")
    namespace, records = _load(source, "chained_raise")
    _Token.runs.clear()
    assert namespace["f"](3, 2) == 2
    with pytest.raises(ZeroDivisionError) as info:
        namespace["f"](3, 0)
    entry = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (entry.lineno, entry.line) == (3, "")  # "<t>" has no source: the line number
    assert info.value.__traceback__.tb_next.tb_frame.f_lineno == 3  # the frame's own line too
    escape_of_3 = [s for s, r in enumerate(records) if r[2] == "line_escape" and r[0] == 4]
    assert [_Token.runs.get(s, 0) for s in escape_of_3] == [1]


def test_a_frame_inside_an_escape_region_is_unfinished():
    source = ("import sys\n"
              "def f(capture):\n"
              "    a = 1\n"
              "    capture(sys._getframe())\n"
              "    b = a + 1\n"
              "    return b\n")
    namespace, records = _load(source, "chained_frames")
    seen = []
    namespace["f"](lambda frame: seen.append((frame.f_code, frame.f_lasti)))
    escape_sites = {s for s, r in enumerate(records) if r[2] == "line_escape"}
    found = escapes.unfinished(seen, escape_sites.__contains__, escapes.new_cache())
    (site,) = found
    assert found[site] == 1 and records[site][0] == 5  # on its way to line 5
    assert escapes.unfinished([(seen[0][0], 0)], escape_sites.__contains__,
                              escapes.new_cache()) == {}  # not yet in the region


COUNTERS = ["racewatch.cover.pycounters"] + (["racewatch.cover._counters"]
                                             if RUNTIME == "c" else [])


@pytest.mark.parametrize("name", COUNTERS)
def test_snapshot_reads_the_counts_and_every_frame(name):
    counters = importlib.import_module(name)
    counters.reset()
    counters.reserve(4)
    counters.hit_atomic(2)
    raw, places = counters.snapshot(0, 4)
    got = array.array("Q", raw).tolist() if isinstance(raw, bytes) else raw
    assert got == [0, 0, 1, 0]
    here = sys._getframe()
    assert here.f_code in {code for code, _lasti in places}
    assert all(isinstance(lasti, int) for _code, lasti in places)
    counters.reset()
