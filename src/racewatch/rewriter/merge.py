"""Merged probes: a line's probe folded into the race token of the line's first access."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from bytecode import Instr, Label, TryBegin, TryEnd

from racewatch.rewriter import opcodes, sites

# The operations through which a race token's slot runs (instrument.py's token probes).
_SLOT_OPS = {"CONTAINS_OP", "UNARY_INVERT", "STORE_SUBSCR"}
# What a race probe pushes around its token besides constants: copies of stack values and
# pairs of them (a cell probe's cell load is recognised in _safe).
_PROBE_OPERANDS = {"COPY", "BUILD_TUPLE"}


def merge(items, module_sites, safe_load):
    """`items` (after lines.insert) with each line probe that a race token probe follows
    closely enough removed, and that token told to count the line (`module_sites.merged`).

    sys.settrace reports a line before its first instruction runs. A race token counts its
    line before it checks the access, so the count stays exact when nothing between the two
    can raise, jump or be jumped to: only labels-free runs of loads that never raise
    (`safe_load(instr)`, the version's LOAD_FASTs), constants and the probe's own operands.
    The line probe costs a dispatch of three instructions and a slot call, plus a token and a
    counter to keep in the cache; the merged one costs a load and an add in a slot already run.
    """
    out = []
    k = 0
    while k < len(items):
        site = line_probe(items, k)
        if site is not None:
            token = _merge_target(items, k + 3, safe_load)
            if token is not None:
                module_sites.merged[int(token)] = int(site)
                k += 3
                continue
        out.append(items[k])
        k += 1
    return out


def line_probe(items, k):
    """The HitSite of the line probe `LOAD_CONST site; UNARY_INVERT; POP_TOP` at k, or None."""
    first = items[k]
    if not (isinstance(first, Instr) and first.name == "LOAD_CONST"
            and type(first.arg) is sites.HitSite and k + 2 < len(items)):
        return None
    invert, pop = items[k + 1], items[k + 2]
    if (isinstance(invert, Instr) and invert.name == "UNARY_INVERT"
            and isinstance(pop, Instr) and pop.name == "POP_TOP"):
        return first.arg
    return None


def _is_race_token(item):
    return (isinstance(item, Instr) and item.name == "LOAD_CONST"
            and type(item.arg) in (sites.ReadSite, sites.WriteSite))


def _merge_target(items, k, safe_load):
    """The race token site whose slot runs first from k with nothing before it that could
    raise or be entered by a jump, or None."""
    while k < len(items):
        item = items[k]
        if isinstance(item, (TryBegin, TryEnd)):
            pass  # nothing in between raises, so which handler would catch it does not matter
        elif not isinstance(item, Instr):
            return None  # a label: another entry, which may not fire the line
        elif _is_race_token(item):
            return item.arg if _slot_follows(items, k + 1) else None
        elif not _safe(items, k, safe_load):
            return None
        k += 1
    return None


def _slot_follows(items, k):
    """Whether the token loaded just before k reaches its slot through its operands alone."""
    while k < len(items):
        item = items[k]
        if not isinstance(item, Instr):
            return False
        if item.name in _SLOT_OPS:
            return True
        if item.name not in _PROBE_OPERANDS:
            return False
        k += 1
    return False


def _safe(items, k, safe_load):
    """Whether the instruction at k can neither raise nor jump."""
    instr = items[k]
    if instr.name == "NOP" or instr.name in _PROBE_OPERANDS:
        return True
    if instr.name in opcodes.CONST_LOADS:
        return not isinstance(instr.arg, sites.SiteId)  # another probe's site: stop there
    if instr.name == opcodes.CELL_LOAD:
        # a cell probe pushes the cell itself (on 3.13 its LOAD_DEREF becomes a LOAD_FAST of
        # the cell's slot, opcodes.fix_cell_loads); a program's own LOAD_DEREF may raise
        return k + 1 < len(items) and _is_race_token(items[k + 1])
    return safe_load(instr)
