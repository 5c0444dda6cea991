"""`python -m racewatch` is the `racewatch` command."""

import sys

from racewatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
