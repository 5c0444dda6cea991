"""Chained line probes: a line that straight-line code reaches from the line before counts as
that line's runs, minus the runs that raised in between."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from bytecode import Instr, Label, TryBegin, TryEnd
from bytecode.instr import InstrLocation

from racewatch.rewriter import merge, opcodes

# The stack an escape handler needs: the lasti and the exception it is entered with, and its
# token.
HANDLER_STACK = 3
_NO_LOCATION = InstrLocation(None, None, None, None)


def chain(items, module_sites, escape_site):
    """`items` (after lines.insert) with each line probe that follows the line probe before it
    in straight-line code removed, and counted from that one (`module_sites.chain`).

    Between two such probes nothing jumps, is jumped to, suspends or is covered by a handler
    of the program's: the second line runs exactly as often as the first, except when the code
    between them raises. That code goes into a handler region of its own, whose handler counts
    the raise with an escape token (`escape_site(instr)`) and re-raises: the interpreter's
    zero-cost exceptions make the region free until something raises, and `RERAISE 1`, given
    the lasti of the raising instruction, leaves the traceback, the frame's line and the trace
    events as they were. A frame still inside such a region when counts are read (another
    thread's, a kill's, a fork's) is an escape not yet known: the collector adds those.

    Returns the new list and whether anything was chained.
    """
    out = []
    handlers = []
    chained = False
    previous = None  # the site of the last line probe whose code is still running straight
    segment = []  # the items since that probe
    region = None  # the program's handler region in force (regions do not nest)
    k = 0
    while k < len(items):
        item = items[k]
        if isinstance(item, TryBegin):
            region = item
        elif isinstance(item, TryEnd):
            region = None
        site = merge.line_probe(items, k) if region is None else None
        if site is not None:
            if previous is None:
                out.extend(items[k:k + 3])
            elif not segment:
                module_sites.chain(site, previous, None)  # back to back: nothing can raise
            else:
                label = Label()
                escapes = TryBegin(label, push_lasti=True, stack_depth=0)
                escape = escape_site(items[k])
                out.extend([escapes, *segment, TryEnd(escapes)])
                handlers.extend(_handler(label, escape))
                module_sites.chain(site, previous, escape)
            chained = chained or previous is not None
            previous, segment = site, []
            k += 3
            continue
        if previous is None:
            out.append(item)
        elif isinstance(item, Instr) and _straight(item):
            segment.append(item)
        else:  # labels, the program's handler regions, jumps, returns, raises, yields
            out.extend(segment)
            out.append(item)
            previous, segment = None, []
        k += 1
    out.extend(segment)
    if not chained:
        return items, False
    if handlers:
        last = next(item for item in reversed(out) if isinstance(item, Instr))
        if not (last.is_final() or last.is_uncond_jump()):
            raise ValueError(f"code ends in {last.name}, which falls through")
    return out + handlers, True


def _straight(instr):
    return not (instr.has_jump() or instr.is_final() or instr.name in opcodes.SUSPENDS)


def _handler(label, escape):
    """Count the escape, then re-raise as if nothing had caught it. No line: the handler fires
    no line event and never shows in a traceback."""
    return [label, Instr("LOAD_CONST", escape, location=_NO_LOCATION),
            Instr("UNARY_INVERT", location=_NO_LOCATION), Instr("POP_TOP", location=_NO_LOCATION),
            Instr("RERAISE", 1, location=_NO_LOCATION)]
