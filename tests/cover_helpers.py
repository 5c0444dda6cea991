"""Helpers for coverage tests: run programs with --cover in a directory, read what they wrote."""

import glob
import json
import os

from tests import helpers


def cover_run(tmp_path, *args, cover="--cover", env=None, timeout=300):
    """`racewatch run --cover ... ARGS` with `tmp_path` as the working directory (where the
    data files go)."""
    return helpers.run(helpers.racewatch_args(cover, *args), cwd=str(tmp_path), env=env,
                       timeout=timeout)


def counts_files(directory):
    return sorted(glob.glob(os.path.join(str(directory), ".racewatch-cover.*.json")))


def coverage_files(directory):
    return sorted(glob.glob(os.path.join(str(directory), ".coverage.racewatch.*")))


def load(path):
    with open(path) as f:
        return json.load(f)


def summed(directory):
    """{real path: {line: hits}} over every counts file in `directory`."""
    total = {}
    for path in counts_files(directory):
        for name, entry in load(path)["files"].items():
            lines = total.setdefault(name, {})
            for line, hits in entry["lines"].items():
                lines[int(line)] = lines.get(int(line), 0) + hits
    return total


def line_of(path, marker):
    """The number of the line of `path` that contains `marker`."""
    with open(path) as f:
        for number, text in enumerate(f, start=1):
            if marker in text:
                return number
    raise LookupError(marker)
