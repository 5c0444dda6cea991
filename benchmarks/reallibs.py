"""Real threaded libraries' own test suites, plainly and under `pytest --race` (not run in CI).

    python benchmarks/reallibs.py --racewatch . --work /tmp/reallibs [--libs cachetools,...]

For each library: its sdist (pinned, from PyPI) is unpacked under WORK and installed in
development mode into one venv per racewatch checkout, with racewatch from RACEWATCH; its
suite runs once plainly and once under `pytest --race` (so the library, being under pytest's
rootdir, is instrumented). Printed per library: tests passed/failed in each run, tests failed
by races, the racing pairs (racewatch's summary lines), lock-order inversions, and the CPU-time
ratio (wall time too). `--json` saves it all; `--log DIR` keeps each run's whole output.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tarfile
import time

# name, sdist version, extra test requirements, pytest arguments (relative to the sdist)
LIBS = {
    "cachetools": ("8.0.3", [], ["tests"]),
    "fasteners": ("0.20", ["diskcache", "more_itertools"], ["tests", "--ignore=tests/test_eventlet.py"]),
    "readerwriterlock": ("1.0.10", ["typing_extensions"], ["tests"]),
    "pebble": ("5.2.3", [], ["test"]),
    "tenacity": ("9.2.1", ["tornado"], ["tests"]),
    "schedule": ("1.2.2", ["pytz"], ["test_schedule.py"]),
    "janus": ("2.0.0", ["pytest-asyncio"], ["tests", "-o", "addopts="]),  # no pytest-cov
    "dogpile.cache": ("1.5.0", ["mako"], ["tests/cache", "tests/util", "tests/test_lock.py"]),
    "pykka": ("4.5.0", ["pytest-mock"], ["tests", "-p", "no:cov"]),
    "watchdog": ("7.1.1", ["flaky", "pytest-timeout"], ["tests", "-o", "addopts="]),
    "boltons": ("26.2.0", [], ["tests"]),
    "transitions": ("0.9.3", ["mock", "dill", "pycodestyle"], ["tests", "-o", "addopts=-rf", "-p", "no:asyncio"]),
    "persist_queue": ("1.1.0", ["msgpack", "cbor2", "mock", "pytest-asyncio", "aiofiles", "aiosqlite"],
                      ["persistqueue/tests", "--ignore=persistqueue/tests/test_mysqlqueue.py"]),
}
_OUTCOME = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_BY_RACES = re.compile(r"racewatch: (\d+) test\(s\) failed by races")
_INVERSIONS = re.compile(r"racewatch: found (\d+) lock-order inversion")
_PAIR = re.compile(r"^  (\S.* vs .*) \((\d+) times?\)$")


def _run(cmd, cwd=None, env=None, timeout=None):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _venv(work, racewatch):
    venv = os.path.join(work, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "pytest", racewatch], check=True)
    return python


def _sdist(work, python, name, version):
    """The unpacked sdist directory of name==version, installed in development mode."""
    where = os.path.join(work, "src")
    os.makedirs(where, exist_ok=True)
    found = [d for d in os.listdir(where) if d.lower().replace("_", ".").replace("-", ".")
             .startswith(f"{name}-{version}".replace("-", ".").replace("_", ".").lower())]
    if not found:
        subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        ":all:", f"{name}=={version}", "-d", where], check=True)
        archive = next(f for f in os.listdir(where) if f.endswith(".tar.gz")
                       and f.lower().replace("_", ".").startswith(name.lower().replace("_", ".")))
        with tarfile.open(os.path.join(where, archive)) as tar:
            tar.extractall(where, filter="data")
        os.remove(os.path.join(where, archive))
        found = [archive[:-len(".tar.gz")]]
    source = os.path.join(where, found[0])
    subprocess.run([python, "-m", "pip", "install", "-q", "-e", source], check=True)
    return source


def _outcome(text):
    tail = [line for line in text.splitlines() if " in " in line and _OUTCOME.search(line)]
    counts = {}
    for n, what in _OUTCOME.findall(tail[-1] if tail else ""):
        counts[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return counts


def _children_cpu():
    """User+sys CPU seconds of the waited-for children so far: unlike wall time, it hardly
    moves with the load of a shared machine (subprocesses a suite leaves unwaited are missed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _suite(python, source, args, race, log):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONRACE", None)
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    if race:
        cmd.insert(3, "--race")
    start, cpu = time.monotonic(), _children_cpu()
    try:
        done = _run(cmd, cwd=source, env=env, timeout=3600)
        text = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or "") + "\nTIMEOUT\n"
    seconds, cpu = time.monotonic() - start, _children_cpu() - cpu
    if log:
        with open(log, "w") as f:
            f.write(" ".join(cmd) + "\n" + text)
    by_races = _BY_RACES.search(text)
    inversions = _INVERSIONS.search(text)
    pairs = [(m.group(1), int(m.group(2))) for line in text.splitlines()
             if (m := _PAIR.match(line))]
    return {"seconds": round(seconds, 2), "cpu": round(cpu, 2), "outcome": _outcome(text),
            "failed_by_races": int(by_races.group(1)) if by_races else 0, "pairs": pairs,
            "inversions": int(inversions.group(1)) if inversions else 0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--racewatch", required=True, help="racewatch checkout to install")
    parser.add_argument("--work", required=True, help="directory for the venv and sources")
    parser.add_argument("--libs", default=",".join(LIBS), help="comma-separated names")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--log", help="directory to keep each run's output in")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    if args.log:
        os.makedirs(args.log, exist_ok=True)
    python = _venv(os.path.abspath(args.work), os.path.abspath(args.racewatch))
    results = {}
    for name in args.libs.split(","):
        version, extra, pytest_args = LIBS[name]
        if extra:
            subprocess.run([python, "-m", "pip", "install", "-q", *extra], check=True)
        source = _sdist(os.path.abspath(args.work), python, name, version)
        runs = {}
        for race in (False, True):
            log = os.path.join(args.log, f"{name}-{'race' if race else 'plain'}.txt") \
                if args.log else None
            runs["race" if race else "plain"] = _suite(python, source, pytest_args, race, log)
        plain, raced = runs["plain"], runs["race"]
        ratio = raced["cpu"] / plain["cpu"] if plain["cpu"] else float("nan")
        results[name] = dict(runs, version=version, ratio=round(ratio, 2))
        print(f"{name} {version}: plain {plain['outcome']} {plain['cpu']} s CPU "
              f"({plain['seconds']} s); race {raced['outcome']} {raced['cpu']} s CPU "
              f"({raced['seconds']} s), {ratio:.2f}x CPU; failed by races: "
              f"{raced['failed_by_races']}; pairs: {len(raced['pairs'])}; lock-order "
              f"inversions: {raced['inversions']}", flush=True)
        for pair, n in raced["pairs"]:
            print(f"    {pair} ({n})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
