"""SIGTERM lands while the program is importing a module (as pool workers, terminated while
they start, often are): here textwrap, which coverage.py needs to write its data file, is
half-imported (in sys.modules, its spec initializing, nothing defined yet) when the signal
arrives. The program dies of it; under --cover both data files are written first.
"""

import importlib.machinery
import os
import signal
import sys
import types

half = types.ModuleType("textwrap")
half.__spec__ = importlib.machinery.ModuleSpec("textwrap", None)
half.__spec__._initializing = True  # what importlib sets while the module's code runs
sys.modules["textwrap"] = half
os.kill(os.getpid(), signal.SIGTERM)
print("still running")
