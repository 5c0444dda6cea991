"""In a fork child, racewatch's probes record nothing until the session has reset its state.

The interpreter runs a child's at-fork hooks in the order they were registered, and the
session registers its reset late: threading's (and logging's, random's...) run first, and
when those modules are instrumented, their probes would check the child's accesses against
the shadow state of the parent's threads, which are gone (false races in threading's
`_after_fork`). Registered as the session module loads, before racewatch imports threading,
this hook runs first and switches the token probes off; the session's reset switches them on.
What runs in between is the child's one thread putting its libraries in order: nothing can
race with it then, and the reset forgets it.
"""

import os


def _child():
    from racewatch import runtime
    if runtime.engine is not None:
        runtime.engine.enable(False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_child)
