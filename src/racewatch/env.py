"""The only place that reads interpreter version and implementation facts."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys
import sysconfig

PYVERSION = sys.version_info[:2]
# What reports say this interpreter is: "3.12.1", "cpython".
PYTHON_VERSION = ".".join(map(str, sys.version_info[:3]))
IMPLEMENTATION = sys.implementation.name

# PYVERSIONS: every version-dependent behaviour is one named boolean here or a table entry in
# rewriter/opcodes.py; nothing else in racewatch compares sys.version_info.
PY311 = PYVERSION == (3, 11)
PY312_PLUS = PYVERSION >= (3, 12)
PY313_PLUS = PYVERSION >= (3, 13)
PY314_PLUS = PYVERSION >= (3, 14)
PY315_PLUS = PYVERSION >= (3, 15)

# PYVERSIONS: 3.12 added sys.last_exc next to sys.last_type/value/traceback.
HAS_SYS_LAST_EXC = PY312_PLUS

# PYVERSIONS: 3.14 (PEP 649) no longer gives `__main__` an `__annotations__` global at startup.
MAIN_HAS_ANNOTATIONS = not PY314_PLUS
# PYVERSIONS: 3.15 no longer sets a module's `__cached__` (it stays on `__spec__.cached`).
MODULES_HAVE_CACHED = not PY315_PLUS

CPYTHON = sys.implementation.name == "cpython"
CACHE_TAG = sys.implementation.cache_tag  # e.g. "cpython-311"; None means "no bytecode caching"

# PYVERSIONS: 3.13t+ free-threaded builds: threads run Python code at once, unless the GIL was
# turned back on (PYTHON_GIL=1). Both runtimes keep their own state consistent either way (the
# C one with its own locks, the twin with one lock); what still differs is the program's
# threads' scheduling, e.g. a freed address is never handed to another thread.
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def lazy_imports_all():
    """PYVERSIONS: whether 3.15's lazy imports mode is "all" (`-X lazy_imports=all`,
    PYTHON_LAZY_IMPORTS, sys.set_lazy_imports): every top-level import is then lazy."""
    return getattr(sys, "get_lazy_imports", lambda: "normal")() == "all"
