"""Race reports match their golden text (tests/golden/NAME.txt), scrubbed of what varies.

On a mismatch the actual text goes to tests/actual/NAME.txt (gitignored): if the change is
intended, copy it over the golden file.
"""

import os
import re

import pytest

from tests.helpers import PROGRAMS, ROOT, RUNTIME, racewatch_args, run

GOLDEN = os.path.join(ROOT, "tests", "golden")
ACTUAL = os.path.join(ROOT, "tests", "actual")

# Program (tests/programs/golden_NAME.py) -> racewatch options.
CASES = {
    "rmw": (),
    "lock_one_side": (),
    "class_attr": (),
    "history_full": ("--history=full",),
}
def scrub(text):
    """Addresses, and paths and line numbers of files outside tests/programs (the stdlib)."""
    text = re.sub(r"0x[0-9a-f]+", "0x...", text)
    return re.sub(r"/\S*/([^/\s]+\.py):\d+", r"\1:N", text)


def report(name):
    options = CASES[name]
    proc = run(racewatch_args(f"--strip-path-prefix={PROGRAMS}{os.sep}", *options,
                              os.path.join(PROGRAMS, f"golden_{name}.py")), cwd=PROGRAMS)
    assert proc.returncode == 66, proc.stderr
    return scrub(proc.stderr)


@pytest.mark.parametrize("name", CASES)
def test_report_matches_golden(name):
    actual = report(name)
    path = os.path.join(GOLDEN, f"{name}.txt")
    expected = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            expected = f.read()
    if actual != expected:
        os.makedirs(ACTUAL, exist_ok=True)
        with open(os.path.join(ACTUAL, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(actual)
    assert actual == expected, f"see tests/actual/{name}.txt"


def test_scrub_keeps_program_lines_and_hides_the_rest():
    line = "  run()  /usr/lib/python3.12/threading.py:1010\n  main()  golden_rmw.py:27 0x7f3a\n"
    assert scrub(line) == "  run()  threading.py:N\n  main()  golden_rmw.py:27 0x...\n"
