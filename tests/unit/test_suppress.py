"""Suppressions: the file format, TSan's pattern matching, race_top vs race, deadlock and thread
rules, inline comments, counts of what fired."""

import types

import pytest

from racewatch.config import ConfigError
from racewatch.runtime import suppress, threads


def race(current, previous, tids=()):
    """A stand-in for report.Race: two stacks of (function, file, line), innermost first."""
    return types.SimpleNamespace(current={"stack": tuple(current)},
                                 previous={"stack": tuple(previous)}, tids=tids)


TOP = ("Cache.fill", "/src/app/cache.py", 10)
CALLER = ("handler", "/src/app/web.py", 33)
OTHER = ("worker", "/src/app/jobs.py", 7)


def rules(text):
    return suppress.Suppressions(suppress.parse(text, "test.supp"))


def test_parse_kinds_comments_and_blank_lines():
    parsed = suppress.parse("# header\n\nrace:foo\n  race_top:bar*baz  # why\n"
                            "deadlock:Bank.*\nthread:^worker-\n", "f")
    assert [(kind, pattern) for kind, pattern, _ in parsed] == [
        ("race", "foo"), ("race_top", "bar*baz"), ("deadlock", "Bank.*"), ("thread", "^worker-")]


@pytest.mark.parametrize("line", ["mutex:foo", "race foo", "race:", "foo", "race_bottom:x",
                                  "deadlock:", "thread :"])
def test_malformed_lines_are_one_line_errors(line):
    with pytest.raises(ConfigError) as err:
        suppress.parse(f"race:ok\n{line}\n", "my.supp")
    message = str(err.value)
    assert "my.supp, line 2" in message and "\n" not in message


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read suppressions file .*No such file"):
        suppress.load(str(tmp_path / "none.supp"))


@pytest.mark.parametrize("pattern, text, matches", [
    ("cache", "/src/app/cache.py", True),       # implicit * at both ends
    ("^cache", "/src/app/cache.py", False),
    ("^/src/*/cache", "/src/app/cache.py", True),
    ("cache.py$", "/src/app/cache.py", True),
    ("cache$", "/src/app/cache.py", False),
    ("Cache.f*l", "Cache.fill", True),
    ("a.b", "axb", False),                      # only * is special
])
def test_tsan_pattern_semantics(pattern, text, matches):
    assert bool(suppress._regex(pattern).search(text)) is matches


def test_race_top_matches_only_the_top_frames():
    found = race([TOP, CALLER], [OTHER])
    assert rules("race_top:handler").match(found) is None
    assert rules("race:handler").match(found) == "race:handler"
    assert rules("race_top:worker").match(found) == "race_top:worker"  # either access's top


def test_patterns_match_function_file_and_module_names(monkeypatch):
    monkeypatch.setattr(suppress, "_module_names", lambda: {"/src/app/cache.py": "app.cache"})
    found = race([TOP], [OTHER])
    assert rules("race_top:Cache.fill").match(found)
    assert rules("race_top:jobs.py").match(found)
    assert rules("race_top:^app.cache$").match(found)           # the module
    assert rules("race_top:app.cache.Cache.fill").match(found)  # module.function
    assert rules("race_top:nothing_like_it").match(found) is None


def test_no_rules_no_match():
    assert suppress.load("").match(race([TOP], [OTHER])) is None


def test_inline_comment_on_either_access_line(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("x = 1\ny = 2  # racewatch: ignore (a benign counter)\n", encoding="utf-8")
    plain = (("f", str(source), 1),)
    marked = (("g", str(source), 2),)
    empty = suppress.Suppressions([])
    assert empty.match(race(plain, plain)) is None
    assert empty.match(race(plain, marked)) == "inline"
    assert empty.match(race(marked, plain)) == "inline"


def test_deadlock_rules_match_any_acquisition_frame_and_nothing_else():
    frames = [TOP, CALLER]
    assert rules("deadlock:handler").match_inversion(frames, set(), [TOP]) == "deadlock:handler"
    assert rules("deadlock:worker").match_inversion(frames, set(), [TOP]) is None
    # a race rule never silences a cycle, nor a deadlock rule a race
    assert rules("race:handler").match_inversion(frames, set(), [TOP]) is None
    assert rules("deadlock:handler").match(race([TOP, CALLER], [OTHER])) is None


@pytest.fixture
def named_threads(monkeypatch):
    """Thread T1 'worker-1' created in spawn_pool(); T2 'fees' created in main()."""
    infos = {1: threads.ThreadInfo(1, None, 0, (("spawn_pool", "/src/app/pool.py", 4),)),
             2: threads.ThreadInfo(2, None, 0, (("main", "/src/app/main.py", 9),))}
    infos[1].name, infos[2].name = "worker-1", "fees"
    monkeypatch.setattr(threads, "_infos", infos)


def test_thread_rules_match_a_thread_name_or_its_creation_stack(named_threads):
    one, two = race([TOP], [OTHER], tids=(1, 0)), race([TOP], [OTHER], tids=(2, 0))
    assert rules("thread:^worker-*$").match(one) == "thread:^worker-*$"
    assert rules("thread:^worker-*$").match(two) is None
    assert rules("thread:spawn_pool").match(one) == "thread:spawn_pool"  # created there
    assert rules("thread:spawn_pool").match(two) is None
    assert rules("thread:^MainThread$").match(two) == "thread:^MainThread$"  # tid 0
    assert rules("thread:fees").match_inversion([TOP], {1, 2}, [TOP]) == "thread:fees"


def test_fired_counts_and_the_used_lines():
    found = rules("race_top:worker\nrace:handler\nrace_top:never")
    for _ in range(3):
        found.match(race([TOP, CALLER], [OTHER]))
    found.match(race([TOP, CALLER], [TOP]))
    assert found.fired == {"race_top:worker": 3, "race:handler": 1}
    assert found.used() == ("racewatch: suppressions used:\n"
                            "      3 race_top:worker\n      1 race:handler\n")
    assert rules("race:x").used() == ""


def test_extra_rules_add_to_the_file(tmp_path):
    supp = tmp_path / "a.supp"
    supp.write_text("race_top:worker\n")
    found = suppress.load(str(supp), ("race:handler",))
    assert [r[0] + ":" + r[1] for r in found.rules] == ["race_top:worker", "race:handler"]
    assert suppress.load("", ("deadlock:x",)).rules[0][:2] == ("deadlock", "x")
    with pytest.raises(ConfigError, match="malformed suppression 'oops' .option 'suppress'."):
        suppress.load("", ("oops",))
