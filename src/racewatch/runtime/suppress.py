"""Suppressions: TSan-style `race:` / `race_top:` patterns, and `# racewatch: ignore` lines."""

import os
import sys

from racewatch.config import ConfigError

KINDS = ("race", "race_top")
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
        if not line:
            continue
        kind, colon, pattern = line.partition(":")
        kind, pattern = kind.strip(), pattern.strip()
        if not colon or kind not in KINDS or not pattern:
            raise ConfigError(f"malformed suppression {line!r} ({path}, line {number}): "
                              "expected race:PATTERN or race_top:PATTERN")
        rules.append((kind, pattern, _regex(pattern)))
    return rules


def load(path):
    """The suppressions of the file at `path` (none for an empty path)."""
    if not path:
        return Suppressions([])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cannot read suppressions file {path!r}: {reason}") from None
    return Suppressions(parse(text, path))


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

    def match(self, race):
        """The matching rule as written (`race_top:app.py`), `inline` for a `# racewatch:
        ignore` comment on either access's line, or None."""
        import linecache
        import re
        tops = [race.current["stack"][:1], race.previous["stack"][:1]]
        for frames in tops:
            for _, file, line in frames:
                if re.search(INLINE, linecache.getline(file, line)):
                    return "inline"
        if not self.rules:
            return None
        modules = _module_names()
        every = [race.current["stack"], race.previous["stack"]]
        for kind, pattern, regex in self.rules:
            for frames in (tops if kind == "race_top" else every):
                if any(regex.search(name) for frame in frames
                       for name in _names(frame, modules)):
                    return f"{kind}:{pattern}"
        return None


def _names(frame, modules):
    """What a pattern may match in a frame: function, module, module.function, file path."""
    function, file, _ = frame
    module = modules.get(os.path.normcase(os.path.abspath(file)), "")
    names = [function, file]
    if module:
        names += [module, f"{module}.{function}"]
    return names
