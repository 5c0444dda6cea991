"""Measure racewatch's overhead: each workload under each variant, as ratios against plain."""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import rounds
import table
import variants

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = os.path.join(HERE, "workloads")
# The development virtualenvs of this project's machines; missing ones are skipped.
DEFAULT_PYTHONS = tuple(f"/tmp/dev{v}/bin/python" for v in ("311", "312", "313"))


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, epilog="See benchmarks/README.md for how to read the table.")
    parser.add_argument("--python", action="append", metavar="PATH",
                        help="interpreter to measure, repeatable (default: the dev venvs "
                             "that exist, else this interpreter)")
    parser.add_argument("--workloads", type=_names, metavar="A,B",
                        help=f"workloads to run (default: all of {', '.join(all_workloads())})")
    parser.add_argument("--variants", type=_names, metavar="A,B",
                        help="variants to run; plain always runs as the baseline (default: "
                             f"all of {', '.join(variants.BY_NAME)})")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="timed runs per variant, best kept (default: 3)")
    parser.add_argument("--repeat-slow", type=int, default=1, metavar="N",
                        help="timed runs of the variants marked slow (default: 1)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="F",
                        help="multiply every workload's amount of work (default: 1)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="kill a run after this long (default: 600)")
    parser.add_argument("--instructions", action="store_true",
                        help="compare instructions executed, counted by valgrind (cachegrind), "
                             "instead of CPU time: the same on a loaded machine, 20-50x slower "
                             "to measure, blind to cache misses; use a small --scale")
    parser.add_argument("--json", metavar="FILE", help="also save every run's raw results")
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on PATH (Debian: apt install valgrind)")
    if args.repeat < 1 or args.repeat_slow < 1 or args.scale <= 0 or args.timeout <= 0:
        parser.error("--repeat and --repeat-slow must be >= 1, --scale and --timeout > 0")
    try:
        args.variants = variants.select(args.variants or list(variants.BY_NAME))
    except KeyError as exc:
        parser.error(f"unknown variant {exc} (known: {', '.join(variants.BY_NAME)})")
    known = all_workloads()
    args.workloads = args.workloads or known
    unknown = [w for w in args.workloads if w not in known]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r} (known: {', '.join(known)})")
    args.python = args.python or [p for p in DEFAULT_PYTHONS if os.path.exists(p)] \
        or [sys.executable]
    return args


def all_workloads():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(WORKLOADS, "*.py")))


def version_of(python):
    """The interpreter's version, e.g. '3.12.1'; exits with one line if it cannot run."""
    try:
        out = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        sys.exit(f"run.py: cannot run {python}: {exc}")
    return out.strip()


def labels_for(pythons):
    """One column label per interpreter: its version, made unique if two share one."""
    labels = []
    for python in pythons:
        label = version_of(python)
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def progress(cells):
    """One line per finished workload, so a long invocation shows it is alive."""
    return ", ".join(f"{variant} {_cost(cell.cost)}" if cell.verdict == rounds.OK
                     else f"{variant} {cell.verdict.upper()}"
                     for (_, _, variant), cell in cells.items())


def _cost(cost):
    return f"{cost / 1e9:.3f} G instr" if isinstance(cost, int) else f"{cost:.3f} s"


def stderr_notes(runs):
    """Each distinct first stderr line of successful runs, with the workloads that said it."""
    said = {}
    for run in runs:
        lines = run.measurement.stderr.strip().splitlines()
        if run.verdict == rounds.OK and lines:
            workloads = said.setdefault((run.python, run.variant, lines[0]), [])
            if run.workload not in workloads:
                workloads.append(run.workload)
    return "\n".join(f"  {python} {variant} ({', '.join(workloads)}): {line}"
                     for (python, variant, line), workloads in said.items())


def report_problem(run):
    """Say it loudly and at once: a failed or mismatching run makes its cell meaningless."""
    kind = "CHECKSUM MISMATCH" if run.verdict == rounds.MISMATCH else "FAILED"
    when = " (warm-up)" if run.warmup else ""
    lines = [f"!!! {kind}: {run.python} {run.workload} {run.variant}{when}: {run.detail}"]
    # The end of stderr holds the exception or racewatch's summary; --json keeps all of it.
    lines += ["!!!   " + line for line in run.measurement.stderr.splitlines()[-15:]]
    sys.stderr.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    labels = labels_for(args.python)
    load_before, started = os.getloadavg()[0], time.time()
    runs = measure_all(args, labels)
    cells = table.summarize(runs)
    if args.instructions:
        print(f"G instr: billions of instructions of the whole process (valgrind), fewest of "
              f"{args.repeat} (slow variants: {args.repeat_slow}) timed runs; slow: ratio to "
              f"{variants.BASELINE.name}.")
    else:
        print(f"CPU s: best of {args.repeat} (slow variants: best of {args.repeat_slow}) timed "
              f"runs, user+sys of the whole process; slow and rss: ratios to "
              f"{variants.BASELINE.name}.")
    print(f"scale {args.scale:g}; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {time.time() - started:.0f} s in all.\n")
    print(table.render(cells, labels, args.workloads, [v.name for v in args.variants],
                       variants.BASELINE.name, args.instructions))
    notes = stderr_notes(runs)
    if notes:
        print("\nSaid on stderr by runs that succeeded (a fallback or warning changes what "
              "a row measures):\n" + notes)
    if args.json:
        save_json(args, labels, runs, cells)
    bad = [r for r in runs if r.verdict != rounds.OK]
    if bad:
        print(f"\n{len(bad)} run(s) failed or printed a different checksum: "
              "their cells say FAILED or MISMATCH; details on stderr.")
    return 1 if bad else 0


def measure_all(args, labels):
    """Every run of the invocation, one Python and one workload at a time."""
    settings = rounds.Settings(args.repeat, args.repeat_slow, args.scale, args.timeout,
                               args.instructions)
    runs = []
    for python, label in zip(args.python, labels):
        for workload in args.workloads:
            script = os.path.join(WORKLOADS, workload + ".py")
            done = rounds.measure_workload(python, label, script, args.variants, settings,
                                           report_problem)
            sys.stderr.write(f"{label} {workload}: {progress(table.summarize(done))}\n")
            runs += done
    return runs


def save_json(args, labels, runs, cells):
    data = {
        "settings": {"repeat": args.repeat, "repeat_slow": args.repeat_slow,
                     "scale": args.scale, "timeout": args.timeout,
                     "instructions": args.instructions,
                     "variants": [v._asdict() for v in args.variants],
                     "pythons": dict(zip(labels, args.python))},
        "runs": [r.to_json() for r in runs],
        "cells": [{"python": p, "workload": w, "variant": v, **cell._asdict(),
                   "ratios": table.ratios(cells, p, w, v, variants.BASELINE.name)}
                  for (p, w, v), cell in cells.items()],
    }
    with open(args.json, "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
