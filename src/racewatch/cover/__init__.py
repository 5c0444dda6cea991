"""Coverage data: counts and coverage.py files, combine and reports."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
