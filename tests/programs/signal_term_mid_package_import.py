"""SIGTERM lands while the program imports a package whose submodules are already imported (a
pool worker terminated inside multiprocessing/__init__.py): coverage.py, which the data-file
write imports, uses multiprocessing.process. The program dies of the signal; under --cover
both data files are written first.
"""

import importlib.machinery
import os
import signal
import sys
import types

import multiprocessing.process  # noqa: F401 - whole, as when the package's __init__ is midway

half = types.ModuleType("multiprocessing")
half.__path__ = sys.modules["multiprocessing"].__path__
half.__spec__ = importlib.machinery.ModuleSpec("multiprocessing", None, is_package=True)
half.__spec__._initializing = True  # what importlib sets while the package's code runs
sys.modules["multiprocessing"] = half
os.kill(os.getpid(), signal.SIGTERM)
print("still running")
