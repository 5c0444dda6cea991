"""Line-event oracle: run a script under sys.settrace in every thread and write, as JSON, how
many "line" events each line of the files beside it had.

usage: linetrace.py OUT.json SCRIPT [ARGS...]
"""

import collections
import json
import os
import runpy
import sys
import threading


def main():
    out, script = sys.argv[1], os.path.realpath(sys.argv[2])
    here = os.path.dirname(script)
    me = os.path.realpath(__file__)
    counts = collections.defaultdict(collections.Counter)
    wanted = {}
    # Without the GIL `counter[line] += 1` from two threads loses counts: the oracle must be
    # exact itself (CI's ft-nogil once had 599 for 600 events of a line run by three threads).
    counting = threading.Lock()

    def tracer(frame, event, arg):
        name = frame.f_code.co_filename
        keep = wanted.get(name)
        if keep is None:
            real = os.path.realpath(name)
            keep = wanted[name] = real if os.path.dirname(real) == here and real != me else ""
        if not keep:
            return None
        if event == "line":
            with counting:
                counts[keep][frame.f_lineno] += 1
        return tracer

    sys.argv = sys.argv[2:]
    sys.path[0] = here
    threading.settrace(tracer)
    sys.settrace(tracer)
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the program's own failure; the counts still count
        status = 1
    finally:
        sys.settrace(None)
        threading.settrace(None)
        with open(out, "w") as f:
            json.dump({path: {str(k): v for k, v in c.items()} for path, c in counts.items()}, f)
    sys.exit(status)


if __name__ == "__main__":
    main()
