"""The bytecode rewriter: instrumentation pass, site ids, cache and import hook."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
