"""Which modules to instrument: include/exclude module patterns, defaulting to the user's code."""

import fnmatch
import os
import re
import site
import sys
import sysconfig

import racewatch

# Never instrumented, whatever the patterns say: racewatch itself and what rewriting runs on.
ALWAYS_EXCLUDED = ("racewatch", "bytecode")

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def _pattern_regex(patterns):
    """One regex for module-name patterns; `pkg` also matches every submodule of pkg."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        core = fnmatch.translate(pattern)[:-2]  # drop fnmatch's trailing `\Z`
        parts.append(f"(?:{core})(?:\\..*)?")
    return re.compile(r"(?s:" + "|".join(parts) + r")\Z")


def _norm(path):
    return os.path.normcase(os.path.realpath(path))


def _under(path, dirs):
    return any(path == d or path.startswith(d + os.sep) for d in dirs)


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


def _installed_dirs():
    """Directories holding code the user did not write: the stdlib and installed packages."""
    dirs = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
            os.path.dirname(racewatch.__file__)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path)
    dirs.update(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE:
        dirs.add(site.getusersitepackages())
    return {_norm(d) for d in dirs if d}


class Selector:
    """Decide which modules the import hook rewrites.

    With include patterns, exactly the matching modules are instrumented (stdlib included,
    for whoever asks). Without them, modules whose file lies under one of `roots` and outside
    the stdlib, site-packages and the interpreter's prefixes. Exclude patterns win.
    """

    def __init__(self, include=(), exclude=(), roots=()):
        self.include = _pattern_regex(include)
        self.explicit = self.include is not None  # else never the stdlib nor installed packages
        self.exclude = _pattern_regex(tuple(exclude) + ALWAYS_EXCLUDED)
        self.roots = tuple(_norm(r) for r in roots)
        self._installed = _installed_dirs() if self.include is None else set()
        self._stdlib_names = frozenset(sys.stdlib_module_names)

    def wants_name(self, fullname):
        """The cheap test the finder runs before any file-system lookup."""
        if self.exclude.match(fullname):
            return False
        if self.include is not None:
            return bool(self.include.match(fullname))
        return fullname.partition(".")[0] not in self._stdlib_names

    def wants(self, fullname, path):
        """The full test, once the module's source file is known."""
        if not self.wants_name(fullname) or not path:
            return False
        if self.include is not None:
            return True
        path = _norm(path)
        if _under(path, self._installed) or "site-packages" in path or "dist-packages" in path:
            return False
        return _under(path, self.roots)
