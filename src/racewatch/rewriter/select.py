"""Which modules to instrument: include/exclude module patterns, defaulting to the user's code."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import fnmatch
import os
import re
import site
import sys
import sysconfig

import racewatch
from racewatch.rewriter import project

# Never instrumented, whatever the patterns say: racewatch itself and what rewriting runs on.
ALWAYS_EXCLUDED = ("racewatch", "bytecode")

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
    for whoever asks). Without them, the user's own code: the top-level packages of the
    projects holding `roots`, wherever they are installed (as `pytest --cov=pkg` measures
    them), and modules whose file lies under one of `roots` and outside the stdlib,
    site-packages and the interpreter's prefixes. Exclude patterns win.
    """

    def __init__(self, include=(), exclude=(), roots=()):
        self.include = _pattern_regex(include)
        self.explicit = self.include is not None  # else never the stdlib nor installed packages
        self.exclude = _pattern_regex(tuple(exclude) + ALWAYS_EXCLUDED)
        self.roots = tuple(_norm(r) for r in roots)
        self._installed = _installed_dirs() if self.include is None else set()
        self._stdlib_names = frozenset(sys.stdlib_module_names)
        self._packages = None if self.include is None else frozenset()

    @property
    def packages(self):
        """The projects' own top-level packages, found at the first import that asks."""
        if self._packages is None:
            projects = {project.project_root(r) for r in self.roots}
            self._packages = frozenset(
                name for root in projects
                if any(os.path.exists(os.path.join(root, m)) for m in project.PROJECT_MARKERS)
                for name in project.own_packages(root))
        return self._packages

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
        if self.include is not None or fullname.partition(".")[0] in self.packages:
            return True
        path = _norm(path)
        if _under(path, self._installed) or "site-packages" in path or "dist-packages" in path:
            return False
        return _under(path, self.roots)


def imported_before(selector):
    """Top-level names of the modules already imported that `selector` wants: imported before
    its hook, they stay uninstrumented (the main module is the runner's to instrument)."""
    own = os.path.dirname(racewatch.__file__) + os.sep
    names = set()
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        path = namespace.get("__file__") if type(namespace) is dict else None
        if (name in ("__main__", "__mp_main__") or type(path) is not str
                or not path.endswith(".py") or path.startswith(own)):
            continue
        if selector.wants(name, path):
            names.add(name.partition(".")[0])
    return sorted(names)


def imported_before_warning(names, most=8):
    """The one-line warning for `imported_before`'s names, or None."""
    if not names:
        return None
    shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most
                                         else "")
    verb = "was" if len(names) == 1 else "were"
    return (f"{shown} {verb} imported before racewatch started, so "
            f"{'it is' if len(names) == 1 else 'they are'} not instrumented")
