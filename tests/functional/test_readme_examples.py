"""The reports shown in README.md and docs/ are what racewatch prints for the command they name.

A shown report may shorten what varies from run to run or machine to machine: `0x7f6c...` stands
for any address, `.../threading.py:982` for that file anywhere at any line, a line `  ...` for
one or more stack frames, and a line `...` for any lines. Whether a thread a report names had
finished or was still running when the race was found depends on the interleaving: either
status matches.
"""

import json
import os
import re

from tests.helpers import FIXTURES, ROOT, racewatch_args, run


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def code_blocks(text):
    """The contents of the ``` blocks of a markdown text, in order."""
    return re.findall(r"^```[^\n]*\n(.*?)^```$", text, re.M | re.S)


def block_with(name, *needles):
    """The one code block of the file `name` that contains every needle."""
    found = [b for b in code_blocks(_read(name)) if all(n in b for n in needles)]
    assert len(found) == 1, f"{name}: {len(found)} code blocks hold {needles}"
    return found[0]


def pattern(shown):
    """A regex matching the texts that `shown` (a report as documented) stands for."""
    parts = []
    for line in shown.splitlines(keepends=True):
        if line == "  ...\n":
            parts.append(r"(?:  .*\n)+")
            continue
        if line == "...\n":
            parts.append(r"(?:.*\n)*?")
            continue
        escaped = re.escape(line)
        escaped = re.sub(r"0x[0-9a-f]*\\\.\\\.\\\.", "0x[0-9a-f]+", escaped)
        escaped = re.sub(r"\\\.\\\.\\\./(\S+?\\\.py):\d+", r"\\S*/\1:\\d+", escaped)
        escaped = re.sub(r"\\\((?:finished|running)\\\)", r"\\((?:finished|running)\\)", escaped)
        parts.append(escaped)
    return re.compile("".join(parts))


def test_pattern_stands_for_addresses_paths_and_frames():
    shown = "at 0x7f6c...:\n  run()   .../threading.py:982\n  ...\nend\n"
    assert pattern(shown).fullmatch(
        "at 0x7f00ab:\n  run()   /usr/lib/python3.12/threading.py:1010\n  a()  x.py:1\n"
        "  b()  y.py:2\nend\n")
    assert not pattern(shown).fullmatch("at 0x7f00ab:\n  run()   threading.py:1\nend\n")
    assert pattern("Thread T1 't' (finished) created at:\n").fullmatch(
        "Thread T1 't' (running) created at:\n")
    assert not pattern("Thread T1 't' (finished) created at:\n").fullmatch(
        "Thread T2 't' (finished) created at:\n")


def test_quick_start_report_is_what_racewatch_run_prints():
    shown = block_with("README.md", "WARNING: DATA RACE", "examples/bank.py")
    proc = run(racewatch_args("examples/bank.py"), cwd=ROOT)
    assert proc.returncode == 66, proc.stderr
    actual = proc.stderr
    if os.environ.get("PYTHON_GIL") == "0":
        # Truly parallel threads: how often the pair occurred depends on the interleaving (as
        # in test_json_excerpt_is_real); the count is the shown one's, the rest must match.
        shown_count = re.search(r"\(\d+ times?\)$", shown, re.M).group()
        actual = re.sub(r"\(\d+ times?\)$", shown_count, actual, flags=re.M)
    assert pattern(shown).fullmatch(actual), proc.stderr


def test_lock_order_inversion_example_is_real():
    shown = block_with("docs/reports.md", "WARNING: lock-order-inversion")
    name = "deadlock_two_threads_opposite_order.py"
    proc = run(racewatch_args(f"--strip-path-prefix={ROOT}{os.sep}",
                              os.path.join(FIXTURES, name)), cwd=FIXTURES)
    assert proc.returncode == 66, proc.stderr
    # As the text before it says: Thread._bootstrap* frames are left out.
    actual = "".join(line for line in proc.stderr.splitlines(keepends=True)
                     if "Thread._bootstrap" not in line)
    assert pattern(shown).fullmatch(actual), actual


def _shown_records(shown):
    """The records of a shown JSON Lines excerpt: one may span lines, `...` cuts lists."""
    records, pending = [], ""
    for line in shown.splitlines():
        if line == "...":
            continue
        pending += line.replace(", ...]", "]") + "\n"
        try:
            records.append(json.loads(pending))
        except json.JSONDecodeError:
            continue
        pending = ""
    assert not pending, pending
    return records


def _contains(actual, shown):
    """Whether `shown` is `actual` with lists cut short, addresses and varying values aside."""
    if isinstance(shown, dict):
        if shown.get("status") in ("finished", "running"):  # a thread's: the interleaving's
            shown = {k: v for k, v in shown.items() if k != "status"}
        # a frame in threading.py: its line is each Python's own
        anywhere = str(shown.get("file", "")).endswith("threading.py")
        return isinstance(actual, dict) and all(
            k in actual and (anywhere and k == "line" or _contains(actual[k], v))
            for k, v in shown.items())
    if isinstance(shown, list):
        return (isinstance(actual, list) and len(shown) <= len(actual)
                and all(_contains(a, s) for a, s in zip(actual, shown)))
    if isinstance(shown, str) and isinstance(actual, str):
        return re.sub(r"0x[0-9a-f]+", "0x", shown) == re.sub(r"0x[0-9a-f]+", "0x", actual) or (
            shown.endswith("threading.py") and actual.endswith("threading.py"))
    return shown == actual


def test_json_excerpt_is_real(tmp_path):
    shown = _shown_records(block_with("docs/reports.md", '"type": "header"'))
    proc = run(racewatch_args("--format=json", f"--log-path={tmp_path}/race",
                              "examples/bank.py"), cwd=ROOT)
    assert proc.returncode == 66, proc.stderr
    (path,) = tmp_path.glob("race.*")
    actual = [json.loads(line) for line in path.read_text().splitlines()]
    header, race, summary = shown
    varying = ("pid", "cwd", "strip_path_prefix", "python", "racewatch", "runtime")
    assert set(header) == set(actual[0])
    assert {k: v for k, v in header.items() if k not in varying} == \
        {k: v for k, v in actual[0].items() if k not in varying}
    assert _contains(actual[1], race), actual[1]
    if os.environ.get("PYTHON_GIL") == "0":
        # Truly parallel threads: how often each pair occurred depends on the interleaving
        # (the pairs themselves do not).
        for record in (summary, actual[-1]):
            record["pairs"] = [{k: v for k, v in pair.items() if k != "count"}
                               for pair in record["pairs"]]
    assert summary == actual[-1]
