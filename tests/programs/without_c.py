"""`racewatch run ARGS` as if no C extension had been built (no compiler): the pure-Python
runtime and lock hooks. Used by tests/functional/test_without_c.py."""

import sys

BLOCKED = ("racewatch.runtime._fast", "racewatch.runtime._locks", "racewatch.cover._counters")


class NotBuilt:
    """Finds racewatch's C extensions missing, as after a failed build."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in BLOCKED:
            raise ImportError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, NotBuilt)

from racewatch import cli  # noqa: E402 - after the blocker, or the C modules load

sys.exit(cli.main(["run", "--runtime=python", *sys.argv[1:]]))
