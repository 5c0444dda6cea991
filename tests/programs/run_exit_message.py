"""sys.exit with a message: Python prints it to stderr and exits 1."""

import sys

sys.exit("fatal: configuration missing")
