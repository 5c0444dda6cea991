"""Which chained-line escape region (rewriter/chains.py) each running frame is inside."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import opcode
import weakref

_LOAD_CONST = opcode.opmap["LOAD_CONST"]


def unfinished(places, is_escape, cache):
    """{escape site: how many of `places` ((code, lasti) of running frames) are inside its
    region}: runs of the line before that have not yet reached the line after, nor raised.

    `is_escape(site)` tells the escape sites; `cache` (a WeakKeyDictionary) keeps each code
    object's regions."""
    found = {}
    for code, lasti in places:
        regions = cache.get(code)
        if regions is None:
            regions = cache[code] = _regions(code, is_escape)
        for start, end, site in regions:
            if start <= lasti < end:
                found[site] = found.get(site, 0) + 1
                break
    return found


def new_cache():
    return weakref.WeakKeyDictionary()


def places_of(frame):
    """(code, lasti) of `frame` and of every frame below it."""
    places = []
    while frame is not None:
        places.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    return places


def _regions(code, is_escape):
    """[(start, end, escape site)] of the code's handler regions whose handler is an escape
    handler: `LOAD_CONST token` of an escape site first."""
    regions = []
    for start, end, target in _exception_table(code):
        site = getattr(_const_at(code, target), "site", None)
        if isinstance(site, int) and is_escape(site):
            regions.append((start, end, site))
    return regions


def _exception_table(code):
    """(start, end, target) byte offsets of each entry of the code's exception table, in the
    format of CPython 3.11+ (Objects/exception_handling_notes.txt): varints of 6 bits, the
    first of an entry flagged with bit 7, the next with bit 6."""
    table = code.co_exceptiontable
    k = 0

    def varint():
        nonlocal k
        byte = table[k]
        k += 1
        value = byte & 63
        while byte & 64:
            byte = table[k]
            k += 1
            value = (value << 6) | (byte & 63)
        return value

    while k < len(table):
        start = varint() * 2
        end = start + varint() * 2
        target = varint() * 2
        varint()  # depth and lasti
        yield start, end, target


def _const_at(code, offset):
    """The constant the instruction at `offset` loads (after its EXTENDED_ARGs), or None."""
    raw = code.co_code
    arg = 0
    while offset < len(raw) and raw[offset] == opcode.EXTENDED_ARG:
        arg = (arg << 8) | raw[offset + 1]
        offset += 2
    if offset >= len(raw) or raw[offset] != _LOAD_CONST:
        return None
    arg = (arg << 8) | raw[offset + 1]
    return code.co_consts[arg] if arg < len(code.co_consts) else None
