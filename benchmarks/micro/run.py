"""Per-access costs, plain and under racewatch, side by side: `python benchmarks/micro/run.py`."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RACEWATCH_"))}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    return dict((line[:16].strip(), float(line[16:].split()[0])) for line in out.splitlines())


def main():
    pythons = sys.argv[1:] or [sys.executable]
    for python in pythons:
        script = os.path.join(HERE, "accesses.py")
        plain = measure([python, script])
        watched = measure([python, "-m", "racewatch", "run", script])
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"{version}: ns per access   plain   racewatch   added")
        for name in plain:
            print(f"  {name:16} {plain[name]:7.1f} {watched[name]:11.1f} {watched[name] - plain[name]:7.1f}")


if __name__ == "__main__":
    main()
