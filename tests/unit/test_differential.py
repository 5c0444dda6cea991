"""The C engine and the Python twin find the same races in the same event traces.

Random traces (tracegen.py; RACEWATCH_DIFF_TRACES sets how many, 1000 by default) and traces
recorded from real programs (traces/*.json, made by tests/programs/record_trace.py) are
replayed into each engine on real threads; race pairs, counts and every event must agree.
"""

import glob
import json
import os

import pytest

from racewatch.runtime import api
from tests.unit import replay, tracegen
from tests.unit.engines import Driver, _fast

COUNT = int(os.environ.get("RACEWATCH_DIFF_TRACES", "1000"))
TRACES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "traces", "*.json")))


def both(trace):
    """(python result, C result) for one trace."""
    return [replay.replay(engine, trace) for engine in (api, _fast)]


@pytest.mark.parametrize("seed", range(COUNT))
def test_random_trace(seed):
    python, c = both(tracegen.random_trace(seed))
    assert c == python


def test_reader_choice():
    """When a write races with several readers at one site, both engines name the same one
    (the lowest tid)."""
    results = []
    for engine in (api, _fast):
        obj = replay.Plain()
        with Driver(engine, threads=3) as d:
            d(1, "current_tid")
            d(2, "current_tid")
            d(2, "read", obj, "a", 1)  # the higher tid reads first
            d(1, "read", obj, "a", 1)
            d(0, "write", obj, "a", 2)
        assert d.races() == {(1, 2): 2}
        results.append([e.prev_tid for e in d.events])
    assert results[0] == results[1]


@pytest.mark.parametrize("path", TRACES, ids=[os.path.basename(p)[:-5] for p in TRACES])
def test_recorded_trace(path):
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    python, c = both(trace)
    assert c == python
    # The replay found what the real run found: the recording is faithful.
    assert python[0] == {(a, b): n for a, b, n in trace["races"]}


def test_traces_were_recorded():
    assert len(TRACES) >= 3


def test_random_traces_exercise_every_rule(monkeypatch):
    """The corpus is not trivial: it has races of every kind, and traces without any."""
    seen = set()
    racy = 0
    seen_check = api._seen

    def watched(*args):
        result = seen_check(*args)
        seen.update({"moved site"} if result is api._ELSEWHERE else set())
        return result

    monkeypatch.setattr(api, "_seen", watched)
    item_sites = {s for kind in ("item", "item_delete", "contains")
                  for s in tracegen.SITE_IDS[kind]}
    examined = min(COUNT, 300)
    for seed in range(examined):
        trace = tracegen.random_trace(seed)
        kinds = dict(enumerate(trace["objects"]))
        races, events, orders = replay.replay(api, trace)
        racy += bool(races)
        seen.update({"lock order"} if orders else set())
        flags = {e[4] for e in trace["events"] if e[1] == "lock_acquired"}
        seen.update({"inner lock"} if any(f & tracegen.INNER for f in flags) else set())
        seen.update({"signal"} if any(e[1] == "lock_released" and e[3] == 1 and
                                      trace["objects"][e[2]] == "plainlock" for e in
                                      trace["events"]) else set())
        for (target, key, site, tid, is_write, atomic, lockset, prev_site, prev_tid,
             prev_write, prev_atomic, prev_lockset, stack) in events:
            seen.add(("write" if is_write else "read", "write" if prev_write else "read"))
            seen.update({"atomic"} if atomic or prev_atomic else set())
            seen.update({"lockset"} if lockset or prev_lockset else set())
            seen.update({"stack"} if stack else set())
            seen.update({"shape"} if key == "<shape>" else set())
            seen.update({"values"} if key == "<items>" else set())
            seen.update({"block"} if type(key) is int and key < 0 else set())
            seen.update({"class value"} if kinds.get(target) == "valued_class" else set())
            seen.update({"instance dict"} if kinds.get(target) == "valued"
                        and item_sites & {site, prev_site} else set())
            seen.update({"concat"} if set(tracegen.SITE_IDS["concat"]) & {site, prev_site}
                        else set())
            seen.update({"global"} if str(target).endswith(".__dict__") else set())
            seen.update({"tuple key"} if isinstance(key, tuple) else set())
            seen.update({"identity key"} if str(key).startswith("<obj") else set())
        seen.update({"counted"} if any(n > 1 for n in races.values()) else set())
    assert {("write", "write"), ("read", "write"), ("write", "read"), "atomic", "lockset",
            "stack", "shape", "counted", "global", "tuple key", "identity key", "lock order",
            "inner lock", "values", "block", "moved site", "class value", "instance dict",
            "concat"} <= seen
    assert examined // 10 < racy < examined
