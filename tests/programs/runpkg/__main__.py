"""`python -m runpkg`: prints how it was run."""

import sys

print(sys.argv[1:], __name__, __package__, __spec__.name, __file__.endswith("__main__.py"))
