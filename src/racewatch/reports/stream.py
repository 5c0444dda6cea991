"""The JSON Lines report stream: schema name and version, and its header and summary records."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

from racewatch import env

SCHEMA = "racewatch-report"
# Readers refuse a greater version. Adding an optional field keeps the version; a change that
# breaks readers (a field removed, renamed or given another meaning) increments it.
VERSION = 1
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "report_schema.json")


def header(strip="", runtime=None, sources=None):
    """The first record of every report stream: what wrote it, where, and for which process."""
    from racewatch import __version__
    try:
        cwd = os.getcwd()
    except OSError:  # the program removed its working directory
        cwd = None
    record = {"type": "header", "schema": SCHEMA, "version": VERSION, "racewatch": __version__,
              "python": env.PYTHON_VERSION, "implementation": env.IMPLEMENTATION,
              "platform": sys.platform, "pid": os.getpid(), "argv": list(sys.argv), "cwd": cwd,
              "strip_path_prefix": strip}
    if runtime is not None:
        record["runtime"] = runtime
    if sources is not None:  # a merged report: no process of its own
        record.update(pid=None, argv=None, sources=sources)
    return record


def summary(pairs, inversions=None, processes=None, descendants=None):
    """The last record: pairs are dicts {"id", "sites", "count"}, one per racing pair;
    `descendants`, from the top process of a run: what each process it started found."""
    record = {"type": "summary", "races": len(pairs), "pairs": pairs}
    if inversions is not None:
        record["lock_order_inversions"] = inversions
    if processes is not None:
        record["processes"] = processes
    if descendants is not None:
        record["descendants"] = descendants
    return record


def dumps(record):
    import json  # only for this format: imported eagerly, json could not be instrumented
    return json.dumps(record) + "\n"
