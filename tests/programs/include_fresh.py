"""Import MODULE, then a fresh copy of it, as CPython's tests do with import_fresh_module.

usage: include_fresh.py MODULE SIDEFILE
Prints what the fresh copy defines; under racewatch, writes to SIDEFILE codecheck's report on
the fresh copy (how many of its code objects were instrumented, which were missed).
"""

import importlib
import json
import sys

name, side = sys.argv[1], sys.argv[2]
first = importlib.import_module(name)
del sys.modules[name]
fresh = importlib.import_module(name)
sys.modules[name] = first  # everyone else keeps the module they imported
print(name, sorted(n for n in vars(fresh) if not n.startswith("_"))[:8])
if "racewatch.rewriter.instrument" in sys.modules:
    import codecheck
    with open(side, "w") as f:
        json.dump(codecheck.report(fresh), f)
