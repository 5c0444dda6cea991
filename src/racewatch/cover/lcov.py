"""`racewatch cover lcov`: an LCOV tracefile with real hit counts (`DA:line,count`)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py

def render(counts):
    """The tracefile text: one record per file, every probed line with its count."""
    out = ["TN:"]
    for path in sorted(counts.files):
        _digest, lines = counts.files[path]
        out.append(f"SF:{path}")
        out += [f"DA:{line},{hits}" for line, hits in sorted(lines.items())]
        out += [f"LF:{len(lines)}", f"LH:{sum(1 for n in lines.values() if n)}", "end_of_record"]
    return "\n".join(out) + "\n"
