"""How much of a program's parallel speedup it keeps under racewatch: `python benchmarks/speedup.py`.

Runs workloads/parallel.py (a fixed amount of work split over PARALLEL_THREADS threads) with one
thread and with N, plain and under `racewatch run`, and prints each variant's speedup (wall time
with one thread / wall time with N) and racewatch's as a share of plain's. Speedup is wall time,
so it means something only on a machine with N idle cores: the load average is printed before
and after. On a free-threaded interpreter the children run with PYTHON_GIL=0.

    python benchmarks/speedup.py --python .venv313t/bin/python --threads 2 --repeat 7
"""

import argparse
import os
import subprocess
import sys
import time

import variants

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workloads", "parallel.py")
VARIANTS = {v.name: v.args for v in variants.select(["race-c"])}  # plain and race-c


def wall(python, variant, threads, scale, env):
    """Wall seconds of one run, and its checksum line."""
    env = dict(env, PARALLEL_THREADS=str(threads))
    started = time.perf_counter()
    proc = subprocess.run([python, *VARIANTS[variant], WORKLOAD, format(scale, "g")],
                          capture_output=True, text=True, env=env, cwd=HERE)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or not proc.stdout.startswith("checksum "):
        sys.exit(f"speedup: {variant} with {threads} thread(s) failed:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RACEWATCH_"))}
    env["PYTHONHASHSEED"] = "0"
    if variants.free_threaded(args.python):
        env["PYTHON_GIL"] = "0"
    print(f"load average {os.getloadavg()[0]:.2f} before")
    best = {}
    for variant in VARIANTS:  # warm up: racewatch's cache of rewritten code
        wall(args.python, variant, 1, 0.1, env)
    checksums = set()
    for _ in range(args.repeat):  # round-robin: noise spreads over every cell
        for variant in VARIANTS:
            for threads in (1, args.threads):
                seconds, checksum = wall(args.python, variant, threads, args.scale, env)
                checksums.add(checksum)
                key = (variant, threads)
                best[key] = min(best.get(key, seconds), seconds)
    if len(checksums) != 1:
        sys.exit(f"speedup: the runs computed different things: {sorted(checksums)}")
    speedups = {}
    for variant in VARIANTS:
        one, many = best[(variant, 1)], best[(variant, args.threads)]
        speedups[variant] = one / many
        print(f"{variant:8} 1 thread {one:7.3f} s   {args.threads} threads {many:7.3f} s   "
              f"speedup {speedups[variant]:.2f}x")
    print(f"racewatch keeps {speedups['race-c'] / speedups['plain']:.0%} of plain's speedup; "
          f"single-thread overhead {best[('race-c', 1)] / best[('plain', 1)]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
