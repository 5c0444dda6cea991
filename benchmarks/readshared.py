"""Memory of read-shared state: `python benchmarks/readshared.py [--threads 64] [--objects 1e6]`.

Makes N objects, then T threads each read an attribute of every one (no synchronization between
the readers: every object ends up read by all T threads), plain and under `racewatch run`, and
prints each run's peak resident memory and racewatch's as a multiple of plain's (issue 15's
bound: 3x). On a free-threaded interpreter the children run with PYTHON_GIL=0.

    python benchmarks/readshared.py --python .venv313t/bin/python
"""

import argparse
import os
import subprocess
import sys
import tempfile

import variants

PROGRAM = """
import resource, sys, threading

class Obj:
    def __init__(self, n):
        self.n = n

objs = [Obj(i) for i in range(int(float(sys.argv[1])))]

def reader(total):
    s = 0
    for o in objs:
        s += o.n
    total.append(s)

totals = []
threads = [threading.Thread(target=reader, args=(totals,)) for _ in range(int(sys.argv[2]))]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert len(set(totals)) == 1 and len(totals) == len(threads)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
"""

VARIANTS = {v.name: v.args for v in variants.select(["race-c"])}  # plain and race-c


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--objects", type=float, default=1e6)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RACEWATCH_"))}
    if variants.free_threaded(args.python):
        env["PYTHON_GIL"] = "0"
    # Its own directory, so nothing is written into the checkout (the benchmark tests list
    # benchmarks/workloads/ while this may be running).
    with tempfile.TemporaryDirectory(prefix="racewatch-readshared-") as workdir:
        script = os.path.join(workdir, "readshared_program.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(PROGRAM)
        peak = {}
        for variant, prefix in VARIANTS.items():
            proc = subprocess.run([args.python, *prefix, script, format(args.objects, "g"),
                                   str(args.threads)],
                                  capture_output=True, text=True, env=env, cwd=workdir)
            if proc.returncode != 0:
                sys.exit(f"readshared: {variant} failed:\n{proc.stderr[-2000:]}")
            peak[variant] = int(proc.stdout.split()[-1]) / 1024
            print(f"{variant:8} {args.threads} threads x {args.objects:g} objects: "
                  f"peak {peak[variant]:.0f} MiB")
    print(f"racewatch: {peak['race-c'] / peak['plain']:.2f}x plain's peak memory")


if __name__ == "__main__":
    main()
