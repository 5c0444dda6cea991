"""Suppressions: the file format, TSan's pattern matching, race_top vs race, inline comments."""

import types

import pytest

from racewatch.config import ConfigError
from racewatch.runtime import suppress


def race(current, previous):
    """A stand-in for report.Race: two stacks of (function, file, line), innermost first."""
    return types.SimpleNamespace(current={"stack": tuple(current)},
                                 previous={"stack": tuple(previous)})


TOP = ("Cache.fill", "/src/app/cache.py", 10)
CALLER = ("handler", "/src/app/web.py", 33)
OTHER = ("worker", "/src/app/jobs.py", 7)


def rules(text):
    return suppress.Suppressions(suppress.parse(text, "test.supp"))


def test_parse_kinds_comments_and_blank_lines():
    parsed = suppress.parse("# header\n\nrace:foo\n  race_top:bar*baz  # why\n", "f")
    assert [(kind, pattern) for kind, pattern, _ in parsed] == [
        ("race", "foo"), ("race_top", "bar*baz")]


@pytest.mark.parametrize("line", ["thread:foo", "race foo", "race:", "foo", "race_bottom:x"])
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
