"""Go-style text of findings from their JSON form (the runtime prints through this too)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
BAR = "=================="


def _frames(frames, width):
    return "".join(f"  {f['function'] + '()':<{width}} {f['file']}:{f['line']}\n" for f in frames)


def _width(frames):
    return max([len(f["function"]) + 2 for f in frames] + [16])


def _held(side):
    return f" (mutexes: {', '.join(side['mutexes'])})" if side.get("mutexes") else ""


def _capital(text):
    return text[:1].upper() + text[1:]


def race_text(race):
    """The report of one `race` record, as the runtime prints it."""
    cur, prev = race["access"], race["previous"]
    origins = race.get("threads", [])
    width = _width([*cur["stack"], *prev["stack"], *(f for o in origins for f in o["created_at"])])
    parts = [f"{BAR}\nWARNING: DATA RACE\n",
             f"{_capital(cur['access'])} of {race['location']} by {cur['thread']}{_held(cur)}:\n",
             _frames(cur["stack"], width),
             f"\nPrevious {prev['access']} by {prev['thread']}{_held(prev)}:\n",
             _frames(prev["stack"], width)]
    for origin in origins:
        parts.append(f"\n{_capital(origin['thread'])} ({origin['status']}) created at:\n")
        parts.append(_frames(origin["created_at"], width) if origin["created_at"]
                     else "  [unknown]\n")
    for mutex, desc in race.get("mutexes", {}).items():
        parts.append(f"\nMutex {mutex} is {desc}\n")
    parts.append(f"{BAR}\n")
    return "".join(parts)


def inversion_text(finding):
    """A `lock-order-inversion` record in ThreadSanitizer's shape: the cycle, each
    acquisition with the lock held at the time, and where each lock was created."""
    cycle = finding["cycle"]
    names = {}  # lock description -> M1, M2, ... in cycle order
    for edge in cycle:
        names.setdefault(edge["lock"]["description"], f"M{len(names) + 1}")

    def name(description):
        return names.get(description, description)

    frames = [f for e in cycle for f in (*e["acquired"]["stack"],
                                          *e["acquired"]["while_holding"]["stack"],
                                          *e["lock"]["created_at"])]
    width = _width(frames)
    first = cycle[0]["acquired"]["while_holding"]["description"] if cycle else ""
    graph = " => ".join([f"{name(first)} ({first})"]
                        + [f"{name(e['lock']['description'])} ({e['lock']['description']})"
                           for e in cycle])
    parts = [f"{BAR}\nWARNING: lock-order-inversion (potential deadlock)\n",
             f"Cycle in lock order graph: {graph}\n"]
    for edge in cycle:
        acquired, held = edge["acquired"], edge["acquired"]["while_holding"]
        parts.append(f"\nMutex {name(edge['lock']['description'])} acquired here while holding "
                     f"mutex {name(held['description'])} in {acquired['thread']}:\n")
        parts.append(_frames(acquired["stack"], width))
        parts.append(f"\nMutex {name(held['description'])} previously acquired by the same "
                     "thread here:\n")
        parts.append(_frames(held["stack"], width) if held["stack"] else "  [unknown]\n")
    for edge in cycle:
        lock = edge["lock"]
        parts.append(f"\nMutex {name(lock['description'])} created at:\n")
        parts.append(_frames(lock["created_at"], width) if lock["created_at"]
                     else "  [unknown]\n")
    parts.append(f"{BAR}\n")
    return "".join(parts)


def finding_text(finding):
    if finding["type"] == "lock-order-inversion":
        return inversion_text(finding)
    return race_text(finding)


def site_label(site, access=None):
    """`file:line (access)`, or `file:line` where the access is not known."""
    return f"{site} ({access})" if access else site


def group_pairs(pairs):
    """Racing pairs of sites, (site, access, site, access, times raced) with `file:line`
    sites, grouped by their two lines: the read/write and write/write pairs of one `x += 1`
    are one finding. Returns (label, label, times raced) per group, sorted: `a.py:12 vs
    a.py:12 (read, write)` for one line, `a.py:3 (write) vs a.py:9 (read, write)` for two; a
    group raced as often as its most frequent pair (one `x += 1` race is both pairs)."""
    groups = {}
    for site_a, access_a, site_b, access_b, count in pairs:
        if site_b < site_a:
            site_a, access_a, site_b, access_b = site_b, access_b, site_a, access_a
        kinds, most = groups.get((site_a, site_b), ({}, 0))
        for site, access in ((site_a, access_a), (site_b, access_b)):
            if access:
                kinds.setdefault(site, set()).add(access)
        groups[site_a, site_b] = kinds, max(most, count)
    found = []
    for (site_a, site_b), (kinds, count) in sorted(groups.items()):
        def words(site):
            return ", ".join(sorted(kinds.get(site, ())))
        if site_a == site_b:
            found.append((site_a, site_label(site_b, words(site_b)), count))
        else:
            found.append((site_label(site_a, words(site_a)), site_label(site_b, words(site_b)),
                          count))
    return found


def summary_text(pairs, inversions=0):
    """`racewatch: found N data race(s)` and one line per finding: `pairs` are (site,
    access, site, access, times raced), grouped by lines (see group_pairs)."""
    grouped = group_pairs(pairs)
    lines = [f"racewatch: found {len(grouped)} data race(s)\n"] if grouped or not inversions \
        else []
    for a, b, n in grouped:
        lines.append(f"  {a} vs {b} ({n} time{'s' if n != 1 else ''})\n")
    if inversions:
        lines.append(f"racewatch: found {inversions} lock-order inversion(s) "
                     "(potential deadlock)\n")
    return "".join(lines)
