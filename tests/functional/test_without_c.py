"""Without a C compiler, locks still report their own events (runtime/pylocks.py): the lock
fixtures get the same verdicts from the pure-Python runtime and lock hooks alone."""

import json
import os
import sys

import pytest

from tests.functional.test_fixtures import DEADLOCK_MARK, acquisition_lines, marked_lines, \
    reported_lines, run_fixture
from tests.helpers import PROGRAMS

WITHOUT_C = os.path.join(PROGRAMS, "without_c.py")
FIXTURE_NAMES = [
    "norace_with_lock.py", "norace_condition_subclass.py", "norace_rlock_subclass.py",
    "norace_lock_wrapper_forwarding.py", "norace_logging_handler_emit.py",
    "norace_condition_predicate_loop.py", "norace_queue_bounded_as_mutex.py",
    "norace_queue_task_done_join.py", "norace_simplequeue_handoff.py",
    "norace_thread_is_alive_poll.py", "race_lock_one_side.py",
    "race_lock_wrapper_no_real_lock.py", "race_event_wait_timed_out.py",
    "deadlock_two_threads_opposite_order.py", "nodeadlock_rlock_reentry.py",
]


def verdicts(name, tmp_path):
    proc, records = run_fixture(name, tmp_path, kind=None,
                                command=lambda *args: [sys.executable, WITHOUT_C, *args])
    return (proc, [r for r in records if r["type"] == "race"],
            [r for r in records if r["type"] == "lock-order-inversion"])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_lock_fixture_without_c(name, tmp_path):
    proc, races, inversions = verdicts(name, tmp_path)
    assert "C runtime unavailable" not in proc.stderr  # --runtime=python asks for the twin
    if name.startswith("race_"):
        assert reported_lines(races) == marked_lines(name) and not inversions, proc.stderr
        assert proc.returncode == 66
    elif name.startswith("deadlock_"):
        assert len(inversions) == 1 and not races, proc.stderr
        assert acquisition_lines(inversions) == marked_lines(name, DEADLOCK_MARK)
    else:
        assert races == [] and inversions == [], json.dumps(races + inversions, indent=1)
        assert proc.returncode == 0, proc.stderr
