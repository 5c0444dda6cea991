"""Suppressions: TSan-style `race:` / `race_top:` / `deadlock:` / `thread:` patterns, and
`# racewatch: ignore` lines; counts of which fired."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

from racewatch.errors import ConfigError

KINDS = ("race", "race_top", "deadlock", "thread")
EXPECTED = "expected race:PATTERN, race_top:PATTERN, deadlock:PATTERN or thread:PATTERN"
INLINE = r"#\s*racewatch:\s*ignore\b"  # `re` and `linecache` load only once a race is found


def _regex(pattern):
    """TSan's matching: `*` is any substring, implied at both ends unless `^` / `$` anchor."""
    import re
    head = "^" if pattern.startswith("^") else ""
    tail = "$" if pattern.endswith("$") and len(pattern) > len(head) else ""
    core = pattern[len(head):len(pattern) - len(tail)]
    return re.compile(head + ".*".join(re.escape(part) for part in core.split("*")) + tail)


def parse(text, path):
    """(kind, pattern, regex) rules from a suppressions file's text; one-line errors."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            rules.append(parse_rule(line, f"{path}, line {number}"))
    return rules


def parse_rule(line, where):
    """One `kind:pattern` rule as (kind, pattern, regex); a ConfigError naming `where`."""
    kind, colon, pattern = line.partition(":")
    kind, pattern = kind.strip(), pattern.strip()
    if not colon or kind not in KINDS or not pattern:
        raise ConfigError(f"malformed suppression {line!r} ({where}): {EXPECTED}")
    return (kind, pattern, _regex(pattern))


def load(path, extra=()):
    """The suppressions of the file at `path` (none for an empty path), then the `extra`
    rules (the `suppress` option: `[tool.racewatch] suppress = [...]`)."""
    more = [parse_rule(rule, "option 'suppress'") for rule in extra]
    if not path:
        return Suppressions(more)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cannot read suppressions file {path!r}: {reason}") from None
    return Suppressions(parse(text, path) + more)


def _module_names():
    """{source file: module name} of the modules loaded now (races are rare: built on demand)."""
    names = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if type(file) is str:
            names[os.path.normcase(os.path.abspath(file))] = name
    return names


class Suppressions:
    """Decides whether a race is suppressed; `match(race)` names the rule that matched."""

    def __init__(self, rules):
        self.rules = rules
        self.fired = {}  # rule as written -> how many reports it suppressed

    def match(self, race):
        """The matching rule as written (`race_top:app.py`), `inline` for a `# racewatch:
        ignore` comment on either access's line, or None."""
        tops = [race.current["stack"][:1], race.previous["stack"][:1]]
        every = [race.current["stack"], race.previous["stack"]]
        return self._count(_inline(tops) or self._rules(
            {"race_top": tops, "race": every}, getattr(race, "tids", ())))

    def match_inversion(self, frames, tids, tops):
        """The same for a lock-order inversion: `deadlock:` patterns match any frame of its
        acquisition stacks (`frames`), `thread:` its threads, the inline comment `tops`."""
        return self._count(_inline([tops]) or self._rules({"deadlock": [frames]}, tids))

    def _count(self, rule):
        if rule is not None:
            self.fired[rule] = self.fired.get(rule, 0) + 1
        return rule

    def _rules(self, stacks_by_kind, tids):
        if not self.rules:
            return None
        modules = _module_names()
        for kind, pattern, regex in self.rules:
            if kind == "thread":
                found = any(_thread_matches(regex, tid, modules) for tid in tids)
            else:
                found = any(regex.search(name) for frames in stacks_by_kind.get(kind, ())
                            for frame in frames for name in _names(frame, modules))
            if found:
                return f"{kind}:{pattern}"
        return None

    def used(self):
        """TSan's `Suppressions used:` lines: count and rule, most fired first."""
        return used_text(self.fired)


def used_text(fired):
    """The `Suppressions used:` lines of {rule: times fired}; "" when none fired."""
    if not fired:
        return ""
    rows = sorted(fired.items(), key=lambda item: (-item[1], item[0]))
    return "racewatch: suppressions used:\n" + "".join(
        f"  {count:5} {rule}\n" for rule, count in rows)


def _inline(tops):
    """`inline` if a top frame's line carries `# racewatch: ignore`."""
    import linecache
    import re
    for frames in tops:
        for _, file, line in frames:
            if re.search(INLINE, linecache.getline(file, line)):
                return "inline"
    return None


def _thread_matches(regex, tid, modules):
    """A `thread:` pattern matches the thread's name or a frame of the stack that created it."""
    from racewatch.runtime import threads
    info = threads.info(tid)
    if tid == 0 or info is None:
        import threading
        return bool(regex.search(threading.main_thread().name)) if tid == 0 else False
    name = info.current_name()
    if name and regex.search(name):
        return True
    return any(regex.search(n) for frame in info.created_at or () for n in _names(frame, modules))


def _names(frame, modules):
    """What a pattern may match in a frame: function, module, module.function, file path."""
    function, file, _ = frame
    module = modules.get(os.path.normcase(os.path.abspath(file)), "")
    names = [function, file]
    if module:
        names += [module, f"{module}.{function}"]
    return names
