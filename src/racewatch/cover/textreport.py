"""`racewatch cover report`: hit counts per file, and per line with the source beside them."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os

from racewatch.cover import sources


def display_name(path):
    """A path as reports show it: relative to the current directory when under it."""
    here = os.path.join(os.getcwd(), "")
    return path[len(here):] if path.startswith(here) else path


def summarize(lines):
    """(probed lines, lines never run, total hits, largest count) of one file."""
    return (len(lines), sum(1 for hits in lines.values() if not hits), sum(lines.values()),
            max(lines.values(), default=0))


def ranges(numbers):
    """Line numbers as coverage.py shows missing ones: `3-5, 9`."""
    out = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def percent(probed, missed):
    return 100.0 * (probed - missed) / probed if probed else 100.0


def file_table(counts, show_missing=False, sort="name"):
    """The per-file table, as text."""
    rows = []
    for path, (_digest, lines) in counts.files.items():
        probed, missed, hits, biggest = summarize(lines)
        missing = ranges(line for line, n in lines.items() if not n) if show_missing else ""
        rows.append((display_name(path), probed, missed, percent(probed, missed), hits,
                     biggest, missing))
    key = {"name": lambda r: r[0], "hits": lambda r: (-r[4], r[0]),
           "cover": lambda r: (r[3], r[0])}[sort]
    rows.sort(key=key)
    width = max([len("Name"), len("TOTAL"), *(len(r[0]) for r in rows)])
    head = f"{'Name':<{width}}  {'Lines':>6}  {'Miss':>6}  {'Cover':>6}  {'Hits':>12}  {'Max':>10}"
    if show_missing:
        head += "  Missing"
    rule = "-" * len(head)
    out = [head, rule]
    for name, probed, missed, cover, hits, biggest, missing in rows:
        line = f"{name:<{width}}  {probed:>6}  {missed:>6}  {cover:>5.0f}%  {hits:>12}  {biggest:>10}"
        out.append(line + (f"  {missing}" if show_missing else ""))
    probed = sum(r[1] for r in rows)
    missed = sum(r[2] for r in rows)
    out += [rule, f"{'TOTAL':<{width}}  {probed:>6}  {missed:>6}  {percent(probed, missed):>5.0f}%"
            f"  {sum(r[4] for r in rows):>12}  {max((r[5] for r in rows), default=0):>10}"]
    return "\n".join(out) + f"\n(mode: {counts.mode}; Lines: lines with a line probe, "\
        "Hits: line events counted)\n"


def line_listing(counts, warn):
    """Every file's source with the hit count of each line in the margin (blank: no probe)."""
    out = []
    for path in sorted(counts.files):
        digest, lines = counts.files[path]
        out.append(f"{display_name(path)}  (mode {counts.mode})")
        text = sources.read(path, digest, warn)
        width = max(len(str(max(lines.values(), default=0))), 1)
        if text is None:
            for line in sorted(lines):
                out.append(f"{line:>6}  {lines[line]:>{width}}")
        else:
            for number, source in enumerate(text, start=1):
                hits = lines.get(number)
                shown = "" if hits is None else str(hits)
                out.append(f"{number:>6}  {shown:>{width}}  {source}")
        out.append("")
    return "\n".join(out)
