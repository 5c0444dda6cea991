"""Epochs and vector clocks (FastTrack's vocabulary), shared by the Python twin and tests.

An epoch is one int: `clock << CLOCK_SHIFT | tid << 1 | atomic`. The low bit marks an atomic
access, so a plain access and an atomic one in the same epoch are different shadow values; the
C runtime packs epochs the same way in a uint64. Clock 0 means "never"; threads start at 1.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
TID_BITS = 24
CLOCK_SHIFT = TID_BITS + 1
TID_MASK = (1 << TID_BITS) - 1
MAX_THREADS = 1 << TID_BITS


def epoch(clock, tid, atomic=0):
    return clock << CLOCK_SHIFT | tid << 1 | atomic


def epoch_tid(e):
    return (e >> 1) & TID_MASK


def epoch_clock(e):
    return e >> CLOCK_SHIFT


def is_atomic(e):
    return e & 1


def ordered(e, vc):
    """True if the access at epoch `e` happens-before a thread whose clock is `vc`."""
    tid = (e >> 1) & TID_MASK
    return (e >> CLOCK_SHIFT) <= (vc[tid] if tid < len(vc) else 0)


def join(vc, other):
    """vc := vc ⊔ other, in place."""
    if len(other) > len(vc):
        vc.extend([0] * (len(other) - len(vc)))
    for i, c in enumerate(other):
        if c > vc[i]:
            vc[i] = c
