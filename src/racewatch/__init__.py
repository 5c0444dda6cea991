"""racewatch: a data-race detector for Python threads. Public API, re-exports only."""

__version__ = "0.1.0"
