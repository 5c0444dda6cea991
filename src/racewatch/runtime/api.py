"""THE hot path, pure-Python twin (for now a counting stub with the design's names)."""

import collections

COUNTS = collections.Counter()


def read(obj, key, site):
    COUNTS["read"] += 1


def write(obj, key, site):
    COUNTS["write"] += 1


def atomic_read(obj, site):
    COUNTS["atomic_read"] += 1


def atomic_write(obj, site):
    COUNTS["atomic_write"] += 1


def enter(site):
    COUNTS["enter"] += 1


def leave():
    COUNTS["leave"] += 1


def acquire(sync, site):
    COUNTS["acquire"] += 1


def release(sync, site):
    COUNTS["release"] += 1


def hit(index):
    COUNTS["hit"] += 1
