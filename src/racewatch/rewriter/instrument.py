"""Version-agnostic pass over `bytecode` instructions: insert a runtime call before each access."""

from types import CodeType

from bytecode import Bytecode, Instr

from racewatch.rewriter import opcodes, sites

# Code objects that could not be rewritten, as (qualname, error); the code then runs as it was.
FAILURES = []


def is_instrumented(code):
    """True for code this pass produced (its probes load builtins named with API_PREFIX)."""
    return any(name.startswith(opcodes.API_PREFIX) for name in code.co_names)


def instrument_module(code, path):
    """Rewrite a module's code object and everything nested in it.

    Returns `(code, records, layout)`: site ids in the code are module-local (from 0); the
    records describe them and the layout says where they are, for `sites.relocate`.
    """
    module_sites = sites.ModuleSites()
    new_code, layout = _Pass(module_sites).rewrite(code)
    return new_code, tuple(module_sites.records), layout


class _Pass:
    def __init__(self, module_sites):
        self.sites = module_sites
        self.layouts = {}  # id(rewritten nested code) -> its layout, for sites.finalize

    def rewrite(self, code):
        if is_instrumented(code):
            return code, ((), ())
        try:
            new_code = self._rewrite_one(code)
        except Exception as exc:  # noqa: BLE001 - an odd code object must not break an import
            FAILURES.append((code.co_qualname, f"{type(exc).__name__}: {exc}"))
            return code, ((), ())
        return sites.finalize(new_code, self.layouts)

    def _rewrite_one(self, code):
        bc = Bytecode.from_code(code)
        out = []
        changed = False
        previous = None
        for item in bc:
            if isinstance(item, Instr):
                if item.name == "LOAD_CONST" and isinstance(item.arg, CodeType):
                    child, layout = self.rewrite(item.arg)
                    if child is not item.arg:
                        self.layouts[id(child)] = layout
                        item.arg = child
                        changed = True
                if previous is None or previous.name not in opcodes.NO_INSERT_AFTER:
                    probe = self._probe(item, code.co_qualname)
                    if probe:
                        out.extend(probe)
                        changed = True
                previous = item
            out.append(item)
        if not changed:
            return code
        bc[:] = out
        return bc.to_code()

    def _probe(self, instr, function):
        """The instructions to insert before `instr`, or None."""
        name = instr.name
        if name in opcodes.ATTR_LOADS:
            attr = opcodes.ATTR_LOADS[name](instr.arg)
            probe = self._access("read", sites.READ, attr, instr, function, depth=1)
            if attr in opcodes.SYNC_METHOD_NAMES:
                probe += self._sync(instr, function)
            return probe
        if name in opcodes.WITH_ENTERS:
            return self._sync(instr, function)
        if name in opcodes.ATTR_STORES:
            return self._access("write", sites.WRITE, instr.arg, instr, function, depth=1)
        if name in opcodes.ATTR_DELETES:
            return self._access("write", sites.DELETE, instr.arg, instr, function, depth=1)
        if name in opcodes.SUPER_LOADS:
            return self._super_read(opcodes.SUPER_LOADS[name](instr.arg), instr, function)
        return None

    def _site(self, instr, function, kind, key):
        line = instr.lineno if isinstance(instr.lineno, int) else 0
        return self.sites.new(line, function, kind, key)

    def _access(self, api, kind, key, instr, function, depth):
        """`api(obj, key, site)` where obj is `depth` deep on the stack; stack-neutral."""
        site = self._site(instr, function, kind, key)
        # +2: the callable and its NULL are pushed before the object is copied.
        return self._call(api, [Instr("COPY", depth + 2), Instr("LOAD_CONST", key),
                                Instr("LOAD_CONST", site)], 3, instr.location)

    def _super_read(self, key, instr, function):
        """`read((class, self), key, site)` before LOAD_SUPER_ATTR; the runtime resolves it."""
        site = self._site(instr, function, sites.SUPER_READ, key)
        depth = opcodes.SUPER_CLASS_DEPTH + 2
        return self._call("read", [Instr("COPY", depth), Instr("COPY", depth),
                                   Instr("BUILD_TUPLE", 2), Instr("LOAD_CONST", key),
                                   Instr("LOAD_CONST", site)], 3, instr.location)

    def _sync(self, instr, function):
        """Replace the object on top of the stack by `sync(obj, site)`."""
        site = self._site(instr, function, sites.SYNC, "")
        seq = self._call("sync", [Instr("COPY", 3), Instr("LOAD_CONST", site)], 2,
                         instr.location)
        seq[-1:] = [Instr("SWAP", 2, location=instr.location),
                    Instr("POP_TOP", location=instr.location)]
        return seq

    @staticmethod
    def _call(api, args, nargs, location):
        """Call `api` with the `nargs` values that `args` push, and drop its result."""
        seq = [opcodes.load_api(api), *args, *opcodes.call(nargs), Instr("POP_TOP")]
        for ins in seq:
            ins.location = location  # tracebacks, carets and line events stay the original's
        return seq
