"""racewatch: a data-race detector for Python threads. Public API, re-exports only."""

from racewatch.annotations import happens_after, happens_before
from racewatch.control import races, start, stop

__version__ = "0.1.0"
__all__ = ["happens_after", "happens_before", "races", "start", "stop", "__version__"]
