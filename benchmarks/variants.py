"""The variants the runner measures: how each one launches a workload script."""

import subprocess
from typing import NamedTuple

RACEWATCH_RUN = ("-m", "racewatch", "run")


class Variant(NamedTuple):
    name: str
    args: tuple  # interpreter arguments placed before the workload script
    slow: bool = False  # measured --repeat-slow times instead of --repeat
    env: tuple = ()  # extra (NAME, value) environment pairs for the child


# One line per variant; `plain` is the baseline every ratio divides by and always runs.
VARIANTS = (
    Variant("plain", ()),
    Variant("race-c", (*RACEWATCH_RUN, "--runtime=c")),
    Variant("race-py", (*RACEWATCH_RUN, "--runtime=python"), slow=True),
    Variant("cover-atomic", (*RACEWATCH_RUN, "--cover=atomic", "--no-race")),
    Variant("race-c-cover", (*RACEWATCH_RUN, "--runtime=c", "--cover=atomic")),
    Variant("coverage-py", ("-m", "coverage", "run")),  # coverage.py's default core, to compare
)
BASELINE = VARIANTS[0]
BY_NAME = {v.name: v for v in VARIANTS}


def command(variant, python, script, scale):
    """argv of one run: the interpreter, the variant's arguments, the script and its size."""
    return [python, *variant.args, script, format(scale, "g")]


def select(names):
    """The named variants in table order, the baseline always first; KeyError names a stranger."""
    for name in names:
        if name not in BY_NAME:
            raise KeyError(name)
    return [v for v in VARIANTS if v is BASELINE or v.name in names]


def free_threaded(python):
    """Whether `python` is a free-threaded build (its runs then go without the GIL)."""
    out = subprocess.run([python, "-c", "import sysconfig; "
                          "print(bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip() == "True"
