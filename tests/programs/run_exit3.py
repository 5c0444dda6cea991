"""Exits with status 3 after printing, through sys.exit."""

import sys

print("about to exit")
sys.exit(3)
