"""multiprocessing managers under the spawn and forkserver start methods (the defaults on macOS
and Windows, and on Linux from 3.14), whose start pickles threading objects (semantic identity).
"""

import multiprocessing
if __name__ == "__main__":
    for method in ("spawn", "forkserver"):
        ctx = multiprocessing.get_context(method)
        with ctx.Manager() as manager:
            lock = manager.Lock()
            with lock:
                shared = manager.dict()
                shared["x"] = 1
            print(method, dict(shared))
