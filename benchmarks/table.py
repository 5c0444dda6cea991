"""Summarize measured runs per (Python, workload, variant) and print them as one table."""

from typing import NamedTuple

import rounds


class Cell(NamedTuple):
    cost: float  # best CPU seconds, or fewest instructions, of the timed runs
    maxrss_kb: int  # smallest max RSS of the timed runs (valgrind's own when counting)
    runs: int
    verdict: str  # the worst verdict of any run, warm-up included


def cost_of(measurement):
    """What a run is compared by: instructions when they were counted, else CPU seconds."""
    if measurement.instructions is not None:
        return measurement.instructions
    return measurement.cpu


def summarize(runs):
    """{(python, workload, variant): Cell}."""
    groups = {}
    for run in runs:
        groups.setdefault((run.python, run.workload, run.variant), []).append(run)
    cells = {}
    for key, group in groups.items():
        timed = [r for r in group if not r.warmup and r.verdict == rounds.OK]
        bad = [r.verdict for r in group if r.verdict != rounds.OK]
        verdict = (rounds.MISMATCH if rounds.MISMATCH in bad else bad[0]) if bad else rounds.OK
        cells[key] = Cell(min((cost_of(r.measurement) for r in timed), default=None),
                          min((r.measurement.maxrss_kb for r in timed), default=None),
                          len(timed), verdict)
    return cells


def ratios(cells, python, workload, variant, baseline):
    """(slowdown, RSS ratio) of a cell against the baseline's, or None where either is missing."""
    cell, base = cells.get((python, workload, variant)), cells.get((python, workload, baseline))
    if not cell or not base or cell.cost is None or base.cost is None:
        return None
    return cell.cost / base.cost, cell.maxrss_kb / base.maxrss_kb


def render(cells, pythons, workloads, variant_names, baseline, instructions=False):
    """The table as text: rows workload x variant, a column group per Python; with
    `instructions`, costs are billions of instructions and RSS is not shown (valgrind's)."""
    name_width = max(len(w) for w in workloads) + 2
    variant_width = max(len(v) for v in variant_names) + 2
    group = "{:>8} {:>7} {:>7}"
    group_width = len(group.format("", "", ""))
    lines = [" " * (name_width + variant_width)
             + "".join(f" | {p:^{group_width}}" for p in pythons),
             "workload".ljust(name_width) + "variant".ljust(variant_width)
             + "".join(" | " + group.format("G instr" if instructions else "cpu s", "slow",
                                            "" if instructions else "rss")
                       for _ in pythons)]
    lines.append("-" * len(lines[-1]))
    for workload in workloads:
        for i, variant in enumerate(variant_names):
            row = (workload if i == 0 else "").ljust(name_width) + variant.ljust(variant_width)
            for python in pythons:
                row += " | " + _cell(cells, python, workload, variant, baseline, group,
                                     instructions)
            lines.append(row)
    return "\n".join(line.rstrip() for line in lines)


def _cell(cells, python, workload, variant, baseline, group, instructions):
    cell = cells.get((python, workload, variant))
    if cell is None:
        return group.format("-", "", "")
    if cell.verdict != rounds.OK:
        return group.format(cell.verdict.upper(), "", "")
    both = ratios(cells, python, workload, variant, baseline)
    slow, rss = (f"{both[0]:.2f}x", f"{both[1]:.2f}x") if both else ("?", "?")
    if instructions:
        return group.format(f"{cell.cost / 1e9:.3f}", slow, "")
    return group.format(f"{cell.cost:.3f}", slow, rss)
