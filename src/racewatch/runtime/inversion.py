"""Lock-order inversion reports (lockorder.Inversion): TSan's text shape and the JSON record."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from racewatch.reports.text import BAR
from racewatch.runtime import threads
from racewatch.runtime.parts import frames_text, mutex_names, strip_path, thread_origins

HEADER = "WARNING: lock-order-inversion (potential deadlock)"


def _edges(inversion):
    """(M-name of the lock taken, M-name of the lock held, Edge) for each edge of the cycle."""
    names = mutex_names(inversion.key)
    return [(names[b], names[a], edge) for a, b, edge in inversion.steps]


def format_text(inversion, strip=""):
    edges = _edges(inversion)
    nodes = inversion.nodes
    origins = thread_origins({edge.tid for _, _, edge in edges})
    every = [f for _, _, e in edges for f in (*e.stack, *e.held_stack)]
    every += [f for node in nodes.values() for f in node.stack]
    every += [f for origin in origins for f in origin[3]]
    width = max([len(f[0]) + 2 for f in every] + [16])
    names = mutex_names(inversion.key)
    cycle = " => ".join(names[k] for k in (*inversion.key, inversion.key[0]))
    parts = [f"{BAR}\n{HEADER}\nCycle in lock order graph: {cycle}\n"]
    for taken, held, edge in edges:
        parts.append(f"\nMutex {taken} acquired here while holding mutex {held} in "
                     f"{threads.describe(edge.tid)}:\n")
        parts.append(frames_text(edge.stack, strip, width))
        parts.append(f"\nMutex {held} previously acquired by the same thread here:\n")
        parts.append(frames_text(edge.held_stack, strip, width))
    for key, node in nodes.items():
        how = "created at" if node.observed else (
            "created where racewatch could not see it (before it started); first seen at")
        parts.append(f"\nMutex {names[key]} is {node.description}, {how}:\n")
        parts.append(frames_text(node.stack, strip, width) if node.stack
                     else "  [unknown]\n")
    for _, name, status, created_at in origins:
        parts.append(f"\n{name[0].upper()}{name[1:]} ({status}) created at:\n")
        parts.append(frames_text(created_at, strip, width) if created_at
                     else "  [unknown]\n")
    parts.append(f"{BAR}\n")
    return "".join(parts)


def as_dict(inversion, strip=""):
    """The JSON record of a lock-order inversion (also an entry of `racewatch.races()`)."""
    def frames(fs):
        return [{"function": f, "file": strip_path(p, strip), "line": n}
                for f, p, n in fs]
    cycle = []
    names = mutex_names(inversion.key)
    for a, b, edge in inversion.steps:
        node = inversion.nodes[b]
        cycle.append({
            "lock": {"description": f"{names[b]} ({node.description})",
                     "created_at": frames(node.stack)},
            "acquired": {"thread": threads.describe(edge.tid), "stack": frames(edge.stack),
                         "while_holding": {
                             "description": f"{names[a]} ({inversion.nodes[a].description})",
                             "stack": frames(edge.held_stack)}},
        })
    return {"type": "lock-order-inversion", "cycle": cycle}


def format_json(inversion, strip="", ident=None):
    """One line of the JSON report stream; `ident` numbers the finding in its process."""
    from racewatch.reports import stream
    record = as_dict(inversion, strip)
    if ident is not None:
        record = {"type": record["type"], "id": ident, **record}
    return stream.dumps(record)


def frames_of(inversion):
    """Every frame of every acquisition stack in the cycle (what `deadlock:` patterns match)."""
    return [f for _, _, e in inversion.steps for f in (*e.stack, *e.held_stack)]
