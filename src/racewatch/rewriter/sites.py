"""Small-int site ids for probes, and the process-wide table that maps them back to source."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from collections import namedtuple
from types import CodeType

from racewatch.runtime import owned
from racewatch.runtime import sitekinds as K

# Site kinds, as reports name them, and what each tells the runtime (runtime/sitekinds.py).
KINDS = {
    "read": K.ATTR, "write": K.ATTR, "delete": K.ATTR, "super_read": K.SUPER,
    "global_read": K.GLOBAL, "global_write": K.GLOBAL, "global_delete": K.GLOBAL,
    "cell_read": K.CELL, "cell_write": K.CELL, "cell_delete": K.CELL,
    "item_read": K.ITEM, "item_write": K.ITEM, "item_delete": K.ITEM_DELETE,
    "slice_read": K.SLICE, "slice_write": K.SLICE, "contains": K.CONTAINS, "iter": K.ITER,
    "compare": K.EQ, "concat": K.CONCAT, "concat_inplace": K.CONCAT, "call": K.CALL,
    "imported": K.IMPORTED, "initialized": K.INITIALIZED,
    "method_read": K.METHOD_READ, "method_write": K.METHOD_WRITE,
    "method_atomic_read": K.METHOD_ATOMIC_READ, "method_atomic_write": K.METHOD_ATOMIC_WRITE,
}


def kind_bytes(records):
    """One kind byte per site record, in order."""
    return bytes(KINDS.get(kind, K.NONE) for _line, _function, kind, _name in records)


Site = namedtuple("Site", "file line function kind name")


class SiteId(int):
    """A module-local site id while code is being rewritten: a plain int in the finished code
    (the argument of a called probe).

    `bytecode` merges equal constants by their marshal form; an int subclass cannot be
    marshalled, so each SiteId keeps a co_consts slot of its own and can be rebased later
    without touching a user constant that happens to be equal.
    """

    __slots__ = ()


class ReadSite(SiteId):
    """A site whose constant becomes a read probe token at load (see runtime `token`)."""

    __slots__ = ()


class WriteSite(SiteId):
    """A site whose constant becomes a write probe token at load."""

    __slots__ = ()


class SlotSite(ReadSite):
    """A token site whose kind has slots of its own (calls: `token[callee] = arg0`; imports):
    never merged with a line probe, whose merged tokens have none of them."""

    __slots__ = ()


class HitSite(SiteId):
    """A line probe's site: its constant becomes the coverage collector's hit token at load."""

    __slots__ = ()


# Stored last in the constants of every code object with sites (see sitekinds.MARKER).
MARKER = K.MARKER


class ModuleSites:
    """The sites of one module, numbered from 0 while its code is rewritten."""

    def __init__(self):
        self.records = []
        self.merged = {}  # race token site -> the line site it also counts (merge.py)

    def new(self, line, function, kind, name, cls=SiteId):
        self.records.append((line, function, kind, name))
        return cls(len(self.records) - 1)

    def chain(self, site, previous, escape):
        """Count line probe `site` from line probe `previous`, minus the escapes `escape` counts
        (None: nothing between them can raise); its probe is gone (chains.py). The record names
        both relative to `site`, so that they hold wherever the module's sites are registered."""
        line, function, _kind, _name = self.records[site]
        self.records[site] = (line, function, "line_chained",
                              (previous - site, None if escape is None else escape - site))

    def finalize(self, code, children):
        """Replace SiteId constants by plain ints; return the code and its relocation layout.

        `children` maps id() of nested code objects already finalized to their layouts. A
        layout is `(positions, tokens, ((const_index, child_layout), ...))`, `tokens` holding
        `(const_index, is_write, key, line)` of the token sites (is_write None for a line
        probe's hit token; line the line site a merged probe counts, or None): plain data, so
        it marshals.
        """
        consts = list(code.co_consts)
        positions = []
        tokens = []
        nested = []
        for index, const in enumerate(consts):
            if isinstance(const, SiteId):
                consts[index] = int(const)
                if type(const) is SiteId:
                    positions.append(index)
                elif type(const) is HitSite:
                    tokens.append((index, None, None, None))
                else:  # the key of a named probe is its record's name ("" for the others)
                    tokens.append((index, type(const) is WriteSite,
                                   self.records[const][3] or None, self.merged.get(const)))
            elif isinstance(const, CodeType) and id(const) in children:
                nested.append((index, children[id(const)]))
        if positions or tokens:
            consts.append(MARKER)
            code = code.replace(co_consts=tuple(consts))
        return code, (tuple(positions), tuple(tokens), tuple(nested))


def relocate(code, layout, base, token):
    """Add `base` to every site constant of `code` and its nested code objects, and turn
    token sites into `token(site, is_write, key, line)`: the constants their probes work on."""
    positions, tokens, nested = layout
    if not positions and not tokens and not nested:
        return code
    consts = list(code.co_consts)
    for index in positions:
        consts[index] += base
    for index, is_write, key, line in tokens:
        consts[index] = token(consts[index] + base, is_write, key,
                              None if line is None else line + base)
    for index, child in nested:
        consts[index] = relocate(consts[index], child, base, token)
    return code.replace(co_consts=tuple(consts))


class SiteTable:
    """All sites of the process. Id 0 is reserved so that 0 can mean "no site"."""

    def __init__(self):
        self._sites = [Site("", 0, "", "", "")]
        self._lock = owned.forksafe()  # imports in two threads may register at once
        self.listeners = []  # called with (base, records) after each registration

    def register(self, file, records):
        """Add a module's sites; return the base to relocate its code by."""
        with self._lock:
            base = len(self._sites)
            self._sites.extend(Site(file, line, function, kind, name)
                               for line, function, kind, name in records)
        for listener in self.listeners:
            listener(base, records)
        return base

    def __getitem__(self, site_id):
        return self._sites[site_id]

    def __len__(self):
        return len(self._sites)


SITES = SiteTable()
