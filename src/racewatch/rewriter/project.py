"""The project under test: its root directory and the top-level packages it ships."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import re
import sys

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")

# Directories at a project's top that are not its packages (setuptools' flat-layout exclusions).
NOT_PACKAGES = frozenset((
    "ci", "bin", "debian", "doc", "docs", "documentation", "manpages", "news", "newsfragments",
    "changelog", "test", "tests", "unit_test", "unit_tests", "example", "examples", "scripts",
    "tools", "util", "utils", "python", "build", "dist", "venv", "env", "requirements",
    "tasks", "fabfile", "site_scons", "benchmark", "benchmarks", "exercise", "exercises",
    "htmlcov", "fixtures", "conftest", "setup", "noxfile"))


def project_root(start):
    """The nearest ancestor of `start` that looks like a project, else `start` itself."""
    here = os.path.abspath(start)
    while True:
        if any(os.path.exists(os.path.join(here, m)) for m in PROJECT_MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return os.path.abspath(start)
        here = parent


def own_packages(root):
    """Top-level import names of the project at `root`: those its installed distribution ships
    (named by pyproject.toml or setup.cfg), and the packages in `root/src` and `root` itself."""
    names = set(_layout_packages(root))
    name = distribution_name(root)
    if name is not None:
        names.update(installed_top_level(name))
    return {n for n in names if n.isidentifier() and n not in sys.stdlib_module_names}


def _layout_packages(root):
    """Packages (and, in src/, modules) found in the source tree, as setuptools finds them."""
    src = os.path.join(root, "src")
    for base, strict in ((src, False), (root, True)):
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(base, entry)
            if entry.startswith(".") or entry == "__pycache__" or strict and (
                    entry.startswith("_") or entry in NOT_PACKAGES):
                continue
            if os.path.isdir(path):
                if not strict or os.path.isfile(os.path.join(path, "__init__.py")):
                    yield entry
            elif not strict and entry.endswith(".py"):
                yield entry[:-3]


def distribution_name(root):
    """The project's distribution name from pyproject.toml `[project]` or setup.cfg, or None."""
    pyproject = os.path.join(root, "pyproject.toml")
    try:
        with open(pyproject, "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    if re.search(rb"(?m)^\s*\[project\]", raw):
        import tomllib  # only for a project that has a [project] table
        try:
            name = tomllib.loads(raw.decode("utf-8")).get("project", {}).get("name")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
            name = None
        if isinstance(name, str):
            return name
    setup_cfg = os.path.join(root, "setup.cfg")
    if os.path.isfile(setup_cfg):
        import configparser
        parser = configparser.RawConfigParser()
        try:
            parser.read(setup_cfg, encoding="utf-8")
            return parser.get("metadata", "name", fallback=None)
        except (configparser.Error, UnicodeDecodeError):
            return None
    return None


def _normalized(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def installed_top_level(name):
    """Top-level names of the installed distribution `name`, wherever on sys.path it is: from
    its top_level.txt, else its RECORD (without importing importlib.metadata, ~80 ms)."""
    wanted = _normalized(name)
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for info in listing:
            stem, dot, kind = info.rpartition(".")
            if kind not in ("dist-info", "egg-info") or not dot:
                continue
            if _normalized(stem.split("-", 1)[0]) != wanted:
                continue
            found = _top_level_of(os.path.join(entry or ".", info))
            if found:
                return found
    return set()


def _top_level_of(info):
    try:
        with open(os.path.join(info, "top_level.txt"), encoding="utf-8") as f:
            return {line.strip() for line in f if line.strip()}
    except OSError:
        pass
    try:
        with open(os.path.join(info, "RECORD"), encoding="utf-8") as f:
            paths = [line.rsplit(",", 2)[0].strip('"') for line in f if line.strip()]
    except OSError:
        return set()
    names = set()
    for path in paths:
        first, sep, _ = path.replace("\\", "/").partition("/")
        if first in ("..", "") or first.endswith((".dist-info", ".data", ".pth")):
            continue
        if first.startswith("__editable__") or first == "__pycache__":
            continue  # an editable install's finder: the source tree's packages count instead
        if not sep:  # a top-level module: `mod.py` or an extension `mod.cpython-311-...so`
            first = first.partition(".")[0]
        names.add(first)
    return names
