"""Run a command as this process's child; write its wait status and rusage to a file."""

# Why a launcher: Linux carries a parent's memory high-water mark into a forked child's
# ru_maxrss (across exec too), so a child of the runner never reports less than the runner's
# own peak. Forked from this small interpreter (python -I -S), the floor is ~3 MB of
# anonymous memory, below what any measured Python process reaches by itself.
import os
import sys


def main():
    result_path, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"launch.py: cannot run {argv[0]}: {exc}\n")
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(result_path, "w") as f:
        f.write(f"{status} {usage.ru_utime!r} {usage.ru_stime!r} {usage.ru_maxrss}\n")


main()
