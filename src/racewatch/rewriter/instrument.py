"""Version-agnostic pass over `bytecode` instructions: insert a runtime call before each access."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys
from types import CodeType

from bytecode import Bytecode, Instr, Label

from racewatch import env
from racewatch.rewriter import chains, lines, merge, names, numbers, opcodes, scopes, sites

# Code objects that could not be rewritten, as (qualname, error); the code then runs as it was.
FAILURES = []


def is_instrumented(code):
    """True for code this pass produced: it carries the sites' marker constant."""
    return bool(code.co_consts) and code.co_consts[-1] == sites.MARKER


def instrument_module(code, path, race=True, line_probes=False, chained=False):
    """Rewrite a module's code object and everything nested in it: race probes before
    accesses (`race`), and line probes for coverage (`line_probes`), those that straight-line
    code reaches from the line before counted from that line's (`chained`: hit counts only).

    Returns `(code, records, layout)`: site ids in the code are module-local (from 0); the
    records describe them and the layout says where they are, for `sites.relocate`.
    """
    module_sites = sites.ModuleSites()
    variables, lazy = (scopes.module_names(path, env.lazy_imports_all()) if path and race
                       else (None, frozenset()))
    before = len(FAILURES)
    new_code, layout = _Pass(module_sites, variables, code, race, line_probes,
                             chained, lazy).rewrite(code)
    _warn_failures(path or code.co_filename, FAILURES[before:])
    return new_code, tuple(module_sites.records), layout


def _warn_failures(path, failures):
    """One line on stderr for a module some of whose code runs uninstrumented."""
    if failures:
        qualname, error = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        sys.stderr.write(f"racewatch: warning: {path}: {qualname}{more} not instrumented, "
                         f"runs as compiled: {error}\n")


# Operands of a probe call: each pushes one value, given how many the probe pushed before it
# (the callable and its NULL count as two).
def _stack(depth):
    """A copy of the value `depth` deep on the stack as it was before the probe."""
    return lambda pushed: [Instr("COPY", depth + pushed)]


def _const(value):
    return lambda pushed: [Instr("LOAD_CONST", value)]


def _pair(first, second):
    """A tuple of two stack values."""
    return lambda pushed: [Instr("COPY", first + pushed), Instr("COPY", second + pushed + 1),
                           Instr("BUILD_TUPLE", 2)]


def _is_site(const):
    return isinstance(const, sites.SiteId)


def _cell(var):
    """The closure cell itself (not its contents)."""
    return lambda pushed: [Instr(opcodes.CELL_LOAD, var)]


class _Code:
    """What the pass knows about the code object it is rewriting."""

    def __init__(self, code, module_level):
        self.function = code.co_qualname
        self.module_level = module_level
        self.extra_stack = 0  # the most any inserted sequence pushes above where it starts
        self.least_stack = 0  # what inserted handlers need, entered with the stack emptied
        self.operands = {}  # id(a + b instruction) -> its operands' values (numbers.py)
        self.sequence_free = None  # a test of those values: never a list-like


def _peak(seq):
    """How far `seq` (a stack-neutral probe) pushes above the depth it starts at."""
    depth = peak = 0
    for ins in seq:
        depth += ins.stack_effect(jump=False)
        peak = max(peak, depth)
    return peak


class _Pass:
    def __init__(self, module_sites, variables, root, race=True, line_probes=False,
                 chained=False, lazy=frozenset()):
        self.sites = module_sites
        self.race = race
        self.line_probes = line_probes
        self.chained = chained
        self.variables = variables  # global names that are locations; None: all of them
        self.lazy = lazy  # global names bound by a `lazy import`
        self.root = root
        self.layouts = {}  # id(rewritten nested code) -> its layout, for sites.finalize
        self.handlers = {}
        for table, handler in (
                (opcodes.ATTR_LOADS, self._attr_load), (opcodes.ATTR_STORES, self._attr_store),
                (opcodes.ATTR_DELETES, self._attr_delete), (opcodes.SUPER_LOADS, self._super),
                (opcodes.IMPORT_FROMS, self._import_from),
                (opcodes.GLOBAL_LOADS, self._global_load),
                (opcodes.GLOBAL_STORES | opcodes.GLOBAL_DELETES, self._global_store),
                (opcodes.NAME_LOADS, self._name_load),
                (opcodes.NAME_STORES | opcodes.NAME_DELETES, self._name_store),
                (opcodes.DEREF_LOADS | opcodes.DEREF_STORES | opcodes.DEREF_DELETES,
                 self._deref),
                (opcodes.ITEM_OPS, self._item), (opcodes.SLICE_OPS, self._slice),
                (opcodes.CONTAINS_OPS, self._contains), (opcodes.ITER_OPS, self._iter),
                ({"COMPARE_OP"}, self._compare), ({"BINARY_OP"}, self._binary)):
            for opname in table:
                self.handlers[opname] = handler

    def rewrite(self, code):
        if is_instrumented(code):
            return code, ((), (), ())
        try:
            with opcodes.raw_args(code):
                new_code = self._rewrite_one(code)
        except Exception as exc:  # noqa: BLE001 - an odd code object must not break an import
            FAILURES.append((code.co_qualname, f"{type(exc).__name__}: {exc}"))
            return code, ((), (), ())
        return self.sites.finalize(new_code, self.layouts)

    def _rewrite_one(self, code):
        # Probes are stack-neutral, so handlers keep the stack depths of the table, and the
        # stack size only grows by the highest probe: `bytecode`'s own analysis gets a few
        # nested handlers wrong (runpy, subprocess), and fails on split handler regions.
        bc = Bytecode.from_code(code, conserve_exception_block_stackdepth=True)
        ctx = _Code(code, code is self.root)
        calls = self.race and self._uses_accessors(bc, ctx)
        if self.race:
            ctx.operands, ctx.sequence_free = numbers.operands(bc, code, self.variables)
        out = []
        changed = False
        previous = None
        adjacent = False  # no label between `previous` and this item
        for item in bc:
            if not isinstance(item, Instr):
                adjacent = adjacent and not isinstance(item, Label)
            else:
                if item.name == "LOAD_CONST" and isinstance(item.arg, CodeType):
                    child, layout = self.rewrite(item.arg)
                    if child is not item.arg:
                        self.layouts[id(child)] = layout
                        item.arg = child
                        changed = True
                if self.race and (previous is None
                                  or previous.name not in opcodes.NO_INSERT_AFTER):
                    after = self._after(previous, ctx) if adjacent else []
                    probe = self._probe(item, previous, ctx, calls)
                    for seq, where in ((after, previous), (probe, item)):
                        if seq:
                            for ins in seq:
                                ins.location = where.location  # tracebacks, line events unchanged
                            ctx.extra_stack = max(ctx.extra_stack, _peak(seq))
                            out.extend(seq)
                            changed = True
                previous, adjacent = item, True
            out.append(item)
        if self.line_probes:
            probed = lines.insert(out, lambda instr: self._line_probe(instr, ctx))
            changed = changed or probed is not out
            out = probed
            if self.chained:
                out, linked = chains.chain(out, self.sites, lambda instr: self._site(
                    "line_escape", "", instr, ctx, sites.HitSite))
                if linked:
                    ctx.least_stack = chains.HANDLER_STACK
            if self.race:
                out = merge.merge(out, self.sites, opcodes.never_raising_load(code, out))
        if not changed:
            return code
        bc[:] = out
        stacksize = max(code.co_stacksize + ctx.extra_stack, ctx.least_stack)
        return opcodes.fix_cell_loads(bc.to_code(stacksize=stacksize,
                                                 compute_exception_stack_depths=False),
                                      _is_site)

    def _uses_accessors(self, bc, ctx):
        """Whether this code loads a builtin accessor (len, getattr...) by name: only then do
        its calls get a probe that checks the callee."""
        loads = opcodes.GLOBAL_LOADS.keys() | (opcodes.NAME_LOADS if ctx.module_level else set())
        for ins in bc:
            if isinstance(ins, Instr) and ins.name in loads:
                name = ins.arg[1] if isinstance(ins.arg, tuple) else ins.arg
                if name in names.BUILTIN_ACCESSORS:
                    return True
        return False

    def _probe(self, instr, previous, ctx, calls):
        """The instructions to insert before `instr`, or None."""
        handler = self.handlers.get(instr.name)
        if handler is not None:
            return handler(instr, previous, ctx)
        if calls and instr.name == opcodes.CALL_START:
            return self._call_site(instr, ctx)
        if ctx.module_level and instr.name in opcodes.RETURNS:
            return self._slot_token("initialized", instr, ctx, [], "UNARY_INVERT")
        return None

    def _after(self, instr, ctx):
        """The instructions to insert right after `instr` (straight-line code), or []."""
        if instr.name in opcodes.IMPORT_NAMES:
            depth = 1
        elif instr.name in opcodes.GLOBAL_LOADS and self.lazy and \
                opcodes.GLOBAL_LOADS[instr.name](instr.arg) in self.lazy:
            depth = opcodes.global_value_depth(instr)
        elif instr.name in opcodes.NAME_LOADS and instr.arg in self.lazy and ctx.module_level:
            depth = 1
        else:
            return []
        return self._slot_token("imported", instr, ctx, _stack(depth)(0), "CONTAINS_OP")

    def _slot_token(self, kind, instr, ctx, operand, slot):
        """`operand in token` or `~token`, dropped: a token whose kind has a slot of its own
        (imports as synchronization); a slot the eval loop runs, which profilers never see."""
        token = Instr("LOAD_CONST", self._site(kind, "", instr, ctx, sites.SlotSite))
        op = Instr(slot, 0) if slot == "CONTAINS_OP" else Instr(slot)
        return [*operand, token, op, Instr("POP_TOP")]

    def _site(self, kind, key, instr, ctx, cls=sites.SiteId):
        line = instr.lineno if isinstance(instr.lineno, int) else 0
        return self.sites.new(line, ctx.function, kind, key, cls)

    # Token probes, for the hot accesses: the site's constant becomes a token object at load
    # (sites.relocate), and an operation on it runs one of the runtime's C slots straight from
    # the eval loop. That skips the call sequence, half of a called probe's cost (measured
    # with cachegrind: `obj in token` costs 110-125 instructions on 3.11-3.13, a call 210+).

    def _token(self, api, kind, key, instr, ctx):
        cls = sites.WriteSite if api == "write" else sites.ReadSite
        return Instr("LOAD_CONST", self._site(kind, key, instr, ctx, cls))

    def _emit_named(self, api, kind, name, instr, ctx, obj):
        """`obj in token`, dropped: the access of `name` on obj (attributes, cells, super,
        and iteration with no name)."""
        return [*obj(0), self._token(api, kind, name, instr, ctx), Instr("CONTAINS_OP", 0),
                Instr("POP_TOP")]

    def _emit_global(self, api, kind, name, instr, ctx):
        """`~token`, dropped: the access of the global `name` of the running code."""
        return [self._token(api, kind, name, instr, ctx), Instr("UNARY_INVERT"),
                Instr("POP_TOP")]

    def _emit_keyed(self, api, kind, instr, ctx, obj, key):
        """`token[key] = obj`: an access of obj with a key from the stack (items, operators)."""
        return [*obj(0), self._token(api, kind, "", instr, ctx), *key(2),
                Instr("STORE_SUBSCR")]

    def _line_probe(self, instr, ctx):
        """`~token` for the line of `instr`, dropped: the collector's hit token counts it."""
        site = self._site("line", "", instr, ctx, sites.HitSite)
        seq = [Instr("LOAD_CONST", site), Instr("UNARY_INVERT"), Instr("POP_TOP")]
        for ins in seq:
            ins.location = instr.location
        ctx.extra_stack = max(ctx.extra_stack, _peak(seq))
        return seq

    # -- attributes ---------------------------------------------------------------------------

    def _attr_load(self, instr, previous, ctx):
        attr = opcodes.ATTR_LOADS[instr.name](instr.arg)
        kind = names.CONTAINER_METHODS.get(attr, "read")
        return self._emit_named("read", kind, attr, instr, ctx, _stack(1))

    def _attr_store(self, instr, previous, ctx):
        return self._emit_named("write", "write", instr.arg, instr, ctx, _stack(1))

    def _attr_delete(self, instr, previous, ctx):
        return self._emit_named("write", "delete", instr.arg, instr, ctx, _stack(1))

    def _import_from(self, instr, previous, ctx):
        return self._emit_named("read", "read", instr.arg, instr, ctx, _stack(1))

    def _super(self, instr, previous, ctx):
        """A read of `(class, self)`.name before LOAD_SUPER_ATTR; the runtime resolves it."""
        key = opcodes.SUPER_LOADS[instr.name](instr.arg)
        depth = opcodes.SUPER_CLASS_DEPTH
        return self._emit_named("read", "super_read", key, instr, ctx, _pair(depth, depth - 1))

    # -- globals and closure cells ------------------------------------------------------------

    def _global_load(self, instr, previous, ctx):
        name = opcodes.GLOBAL_LOADS[instr.name](instr.arg)
        if not self._is_variable(name):
            return None  # a function, class, module or builtin nothing rebinds: no probe
        return self._emit_global("read", "global_read", name, instr, ctx)

    def _global_store(self, instr, previous, ctx):
        kind = "global_delete" if instr.name in opcodes.GLOBAL_DELETES else "global_write"
        return self._emit_global("write", kind, instr.arg, instr, ctx)

    def _name_load(self, instr, previous, ctx):
        if not ctx.module_level or not self._is_variable(instr.arg):
            return None  # class bodies' names are the class namespace being built
        return self._emit_global("read", "global_read", instr.arg, instr, ctx)

    def _name_store(self, instr, previous, ctx):
        if not ctx.module_level or not self._is_variable(instr.arg):
            return None
        kind = "global_delete" if instr.name in opcodes.NAME_DELETES else "global_write"
        return self._emit_global("write", kind, instr.arg, instr, ctx)

    def _is_variable(self, name):
        return self.variables is None or name in self.variables

    def _deref(self, instr, previous, ctx):
        var = instr.arg
        name = opcodes.deref_name(var)
        if name == "__class__":
            return None  # zero-argument super()'s cell: set once when the class is made
        if instr.name in opcodes.DEREF_LOADS:
            api, kind = "read", "cell_read"
        else:
            api = "write"
            kind = "cell_delete" if instr.name in opcodes.DEREF_DELETES else "cell_write"
        return self._emit_named(api, kind, name, instr, ctx, _cell(var))

    # -- containers ---------------------------------------------------------------------------

    def _item(self, instr, previous, ctx):
        op = opcodes.item_op(instr)
        if op is None:
            return None  # an arithmetic BINARY_OP
        kind, container, key = op
        api = "read" if kind == "item_read" else "write"
        probe = self._emit_keyed(api, kind, instr, ctx, _stack(container), _stack(key))
        if kind == "item_write" and previous is not None and opcodes.makes_slice_key(previous):
            probe += self._assigned_value(instr, ctx)  # a slice assignment
        return probe

    def _slice(self, instr, previous, ctx):
        """(start, stop) bounds go along: the slice's items are locations too."""
        kind, container = opcodes.SLICE_OPS[instr.name]
        api = "read" if kind == "slice_read" else "write"
        probe = self._emit_keyed(api, kind, instr, ctx, _stack(container),
                                 _pair(container - 1, container - 2))
        return probe + self._assigned_value(instr, ctx) if api == "write" else probe

    def _assigned_value(self, instr, ctx):
        """A slice assignment reads all of the value it assigns, as iterating it would."""
        return self._emit_named("read", "iter", "", instr, ctx,
                                _stack(opcodes.SLICE_VALUE_DEPTH[instr.name]))

    def _contains(self, instr, previous, ctx):
        return self._emit_keyed("read", "contains", instr, ctx, _stack(1), _stack(2))

    def _iter(self, instr, previous, ctx):
        return self._emit_named("read", "iter", "", instr, ctx, _stack(1))

    def _compare(self, instr, previous, ctx):
        if instr.arg not in opcodes.EQUALITY or (previous is not None
                                                 and previous.name in opcodes.CONST_LOADS):
            return None  # `x == CONSTANT` never compares two containers
        return self._emit_keyed("read", "compare", instr, ctx, _stack(2), _stack(1))

    def _binary(self, instr, previous, ctx):
        """`token[b] = a` before `a + b` / `a += b`: concatenations of list-likes read them.
        Left out where a can be no list-like, or b a constant a list-like cannot take; and
        `a += b` unless a is a variable of the function: `obj.a += b` and `d[k] += b` write
        obj.a and d[k] afterwards, which already races with any reader not ordered with it."""
        inplace = opcodes.CONCAT_OPS.get(instr.arg)
        if inplace is None:  # PYVERSIONS: 3.14+ subscripts are BINARY_OPs too
            return self._item(instr, previous, ctx) if instr.name in opcodes.ITEM_OPS else None
        if id(instr) not in ctx.operands:
            return None
        left, right = ctx.operands[id(instr)]
        if ctx.sequence_free(left) or right is numbers.NUMBER or \
                right is numbers.TEXT and not inplace or \
                inplace and left[0] not in ("local", "cell"):
            return None
        kind = "concat_inplace" if inplace else "concat"
        return self._emit_keyed("write" if inplace else "read", kind, instr, ctx, _stack(2),
                                _stack(1))

    def _call_site(self, instr, ctx):
        """`token[callee] = arg0` before a call with one positional argument, and
        `token[callee][arg0] = arg1` with two or three (`token[callee]` is a sink unless the
        callee is a builtin accessor): an access only if the callee is one. Slots, not calls:
        profilers see only the program's calls, and nothing is allocated."""
        nargs = instr.arg
        if not isinstance(nargs, int) or not 1 <= nargs <= 3:
            return None
        callee = nargs + opcodes.CALLABLE_ABOVE_ARGS
        token = Instr("LOAD_CONST", self._site("call", "", instr, ctx, sites.SlotSite))
        if nargs == 1:
            return [*_stack(1)(0), token, *_stack(callee)(2), Instr("STORE_SUBSCR")]
        return [*_stack(nargs - 1)(0), token, *_stack(callee)(2), *opcodes.subscript(),
                *_stack(nargs)(2), Instr("STORE_SUBSCR")]
