"""What a program can list or import of the standard library is the same under racewatch:
builtins (a test that makes a dataclass field of every builtin name), and a copy of queue
made with its C part blocked, as CPython's own tests make one."""

import builtins
import sys

names = sorted(name for name in builtins.__dict__ if not name.startswith("__"))
print("builtins:", len(names), [name for name in names if not name.isidentifier()])

from test.support import import_helper  # noqa: E402

py_queue = import_helper.import_fresh_module("queue", blocked=["_queue"])
q = py_queue.SimpleQueue()
q.put("item")
print("pure-Python queue:", type(q).__module__, q.get(), "_queue" in sys.modules)
