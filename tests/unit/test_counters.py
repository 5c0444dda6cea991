"""The coverage counters, C and Python alike: set / count / atomic, growth, snapshots, reset."""

import array
import importlib
import pickle
import threading

import pytest

from racewatch.runtime import null
from tests.helpers import RUNTIME

IMPLEMENTATIONS = ["racewatch.cover.pycounters"]
if RUNTIME == "c":
    IMPLEMENTATIONS.append("racewatch.cover._counters")


@pytest.fixture(params=IMPLEMENTATIONS)
def counters(request):
    module = importlib.import_module(request.param)
    module.reset()
    module.reserve(10)
    yield module
    module.reset()


def values(counters, start, stop):
    raw = counters.counts(start, stop)
    return array.array("Q", raw).tolist() if isinstance(raw, bytes) else raw


def test_modes(counters):
    for _ in range(3):
        counters.hit_set(1)
        counters.hit_count(2)
        counters.hit_atomic(3)
    assert values(counters, 0, 5) == [0, 1, 3, 3, 0]


def test_ids_beyond_the_table_are_ignored_not_raised(counters):
    size = counters.reserve(0)
    for hit in (counters.hit_set, counters.hit_count, counters.hit_atomic):
        hit(size)  # probes only ever pass ids from 1 up; these are out of any table
        hit(10 ** 30)
    assert sum(values(counters, 0, size)) == 0


def test_growth_keeps_counts(counters):
    counters.hit_atomic(5)
    size = counters.reserve(50_000)
    assert size >= 50_000
    counters.hit_atomic(49_999)
    counters.hit_atomic(5)
    got = values(counters, 0, 50_000)
    assert got[5] == 2 and got[49_999] == 1 and sum(got) == 3


def in_8_threads(hit):
    """Call `hit()` 20,000 times in each of 8 threads, all done on return."""
    def bump():
        for _ in range(20_000):
            hit()
    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_atomic_is_exact_in_threads(counters):
    in_8_threads(lambda: counters.hit_atomic(7))
    assert values(counters, 7, 8) == [160_000]


def test_reset(counters):
    counters.hit_count(1)
    counters.hit_atomic(2)
    counters.reset()
    assert values(counters, 0, 3) == [0, 0, 0]


def test_hit_tokens_count_in_their_mode(counters):
    tokens = [counters.hit_token(1, "set"), counters.hit_token(2, "count"),
              counters.hit_token(3, "atomic")]
    for _ in range(3):
        for token in tokens:
            assert ~token is None  # the probe drops the result; it must still be a value
    assert values(counters, 0, 5) == [0, 1, 3, 3, 0]


def test_hit_tokens_beyond_the_table_count_nothing(counters):
    size = counters.reserve(0)
    ~counters.hit_token(size, "atomic")
    assert sum(values(counters, 0, size)) == 0


def test_a_hit_token_made_beyond_the_table_counts_once_the_table_reaches_it(counters):
    size = counters.reserve(0)
    token = counters.hit_token(size, "count")
    ~token
    counters.reserve(size + 1)
    ~token
    assert values(counters, size, size + 1) == [1]


def test_hit_tokens_stop_when_disabled(counters):
    token = counters.hit_token(4, "atomic")
    counters.enable(False)
    try:
        ~token
    finally:
        counters.enable(True)
    ~token
    assert values(counters, 4, 5) == [1]


def test_hit_tokens_are_exact_in_threads(counters):
    token = counters.hit_token(7, "atomic")
    in_8_threads(lambda: ~token)
    assert values(counters, 7, 8) == [160_000]


def test_a_pickled_hit_token_is_inert(counters):
    copy = pickle.loads(pickle.dumps(counters.hit_token(5, "atomic")))
    ~copy
    assert values(counters, 5, 6) == [0]


def test_bad_hit_token_arguments_raise(counters):
    with pytest.raises((ValueError, KeyError)):
        counters.hit_token(1, "sometimes")


def _engines():
    from racewatch.runtime import api
    engines = [api]
    if RUNTIME == "c":
        from racewatch.runtime import _fast
        engines.append(_fast)
    return engines


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rpartition(".")[2])
def test_a_merged_probe_counts_its_line_in_every_form(counters, engine):
    # race detection off: the line is counted all the same
    engine.enable(False)
    try:
        for k, key in enumerate(["x", None]):
            token = engine.token(1, False, key, counters.hit_token(2 + k, "atomic"))
            0 in token
            ~token
            token[0] = 1
        ~null.LineToken(counters.hit_token(4, "atomic"))
    finally:
        engine.enable(True)
    assert values(counters, 2, 5) == [3, 3, 1]


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rpartition(".")[2])
def test_a_merged_probe_follows_its_counters(counters, engine):
    engine.enable(False)
    size = counters.reserve(0)
    late = engine.token(1, False, "x", counters.hit_token(size, "count"))
    token = engine.token(1, False, "x", counters.hit_token(6, "set"))
    try:
        ~late  # made beyond the table: counts nothing until the table reaches it
        counters.reserve(size + 1)
        ~late
        ~late
        ~token
        ~token
        counters.enable(False)
        ~token
        ~late
    finally:
        counters.enable(True)
        engine.enable(True)
    assert values(counters, size, size + 1) == [2]
    assert values(counters, 6, 7) == [1]


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rpartition(".")[2])
def test_a_merged_probe_is_exact_in_threads(counters, engine):
    engine.enable(False)
    try:
        token = engine.token(1, False, "x", counters.hit_token(8, "atomic"))
        in_8_threads(lambda: ~token)
    finally:
        engine.enable(True)
    assert values(counters, 8, 9) == [160_000]
