"""`python -m racewatch` is the `racewatch` command."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys

from racewatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
