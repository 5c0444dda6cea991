"""racewatch's own exceptions that carry a one-line message for the user."""


class ConfigError(Exception):
    """A bad option; its message is one line naming the option."""
