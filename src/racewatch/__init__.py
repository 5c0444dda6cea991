"""racewatch: a data-race detector for Python threads. Public API, re-exports only.

(PYTEST_DONT_REWRITE: under -X race / PYTHONRACE racewatch is imported before pytest, which
would otherwise warn that it cannot rewrite this plugin's asserts.)
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch.annotations import happens_after, happens_before
from racewatch.control import races, start, stop

__version__ = "0.1.0"
__all__ = ["happens_after", "happens_before", "races", "start", "stop", "__version__"]
