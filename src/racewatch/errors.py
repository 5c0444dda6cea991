"""racewatch's own exceptions that carry a one-line message for the user."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py

class ConfigError(Exception):
    """A bad option; its message is one line naming the option."""
