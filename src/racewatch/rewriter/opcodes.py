"""Every per-version bytecode fact the rewriter needs, as data (grep PYVERSIONS)."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import contextlib
import dis
import inspect

from bytecode import BinaryOp, Compare, Instr

from racewatch import env


# PYVERSIONS: attribute loads. 3.11 has LOAD_ATTR name and LOAD_METHOD name; 3.12+ folds the
# method form into LOAD_ATTR with the argument `(is_method, name)`. Both leave the object on
# top of the stack before they run. Method loads are real reads (`o.cb()` may read an
# instance attribute), so both forms are instrumented.
if env.PY311:
    ATTR_LOADS = {"LOAD_ATTR": lambda arg: arg, "LOAD_METHOD": lambda arg: arg}
else:
    ATTR_LOADS = {"LOAD_ATTR": lambda arg: arg[1]}

# `STORE_ATTR name`: stack [..., value, obj]. `DELETE_ATTR name`: stack [..., obj].
ATTR_STORES = {"STORE_ATTR"}
ATTR_DELETES = {"DELETE_ATTR"}

# PYVERSIONS: 3.12+ compiles `super().x` / `super(C, self).x` to LOAD_SUPER_ATTR with the
# argument `(is_method, two_arg, name)` and the stack [..., global super, class, self]. On 3.11
# the same source is an ordinary LOAD_ATTR on a `super` object, which the runtime resolves.
SUPER_LOADS = {"LOAD_SUPER_ATTR": lambda arg: arg[2]} if env.PY312_PLUS else {}
SUPER_CLASS_DEPTH = 2  # class below self on top of the stack

# PYVERSIONS: nothing may be inserted between these and the instruction that consumes their
# effect (KW_NAMES sets interpreter state for the next CALL on 3.11/3.12; PRECALL on 3.11).
NO_INSERT_AFTER = {"KW_NAMES", "PRECALL"}
# PYVERSIONS: an exhausted FOR_ITER (3.12+) jumps past the END_FOR at its target, and SEND
# past END_SEND, so a probe placed at those labels would be half-skipped.
NO_INSERT_BEFORE = {"END_FOR", "END_SEND"}

# -- globals, closure cells, items (the every-way-threads-share-state issue) ------------------

# `LOAD_GLOBAL (push_null, name)` on 3.11+; STORE/DELETE_GLOBAL name. The *_NAME forms are
# module-level code's globals (instrumented in a module's own code object only).
GLOBAL_LOADS = {"LOAD_GLOBAL": lambda arg: arg[1]}
GLOBAL_STORES = {"STORE_GLOBAL"}
GLOBAL_DELETES = {"DELETE_GLOBAL"}
NAME_LOADS, NAME_STORES, NAME_DELETES = {"LOAD_NAME"}, {"STORE_NAME"}, {"DELETE_NAME"}

# `from m import x` leaves the module on the stack and reads its attribute.
IMPORT_FROMS = {"IMPORT_FROM"}
# An import hands a module to the running thread (the module on top of the stack after it);
# a module's top-level code ends at its returns.
IMPORT_NAMES = {"IMPORT_NAME"}
RETURNS = {"RETURN_VALUE", "RETURN_CONST"}


def global_value_depth(instr):
    """How deep the value a LOAD_GLOBAL / LOAD_NAME pushed lies after it. PYVERSIONS: 3.13+
    push a NULL above the value for a call (3.11/3.12 below it)."""
    return 2 if env.PY313_PLUS and instr.name == "LOAD_GLOBAL" and instr.arg[0] else 1

DEREF_LOADS, DEREF_STORES, DEREF_DELETES = {"LOAD_DEREF"}, {"STORE_DEREF"}, {"DELETE_DEREF"}


def deref_name(arg):
    """The variable name of a *_DEREF argument. PYVERSIONS: 3.14 moved LOAD_DEREF from
    dis.hasfree to haslocal, and `bytecode` then gives a parameter that is also a cell as its
    name (a str, which it encodes back to the same slot) instead of a CellVar."""
    return arg if isinstance(arg, str) else arg.name

# PYVERSIONS: pushing a closure cell itself. 3.11/3.12 have LOAD_CLOSURE; on 3.13 it is a
# compiler pseudo-op for LOAD_FAST of the cell's slot, which `bytecode` refuses to emit, so the
# probe carries a LOAD_DEREF of the cell and `fix_cell_loads` turns it into that LOAD_FAST.
CELL_LOAD = "LOAD_DEREF" if env.PY313_PLUS else "LOAD_CLOSURE"


# PYVERSIONS: `bytecode` 0.19.1 decodes the argument of 3.14's BUILD_INTERPOLATION (t-strings)
# as (bool, FormatValue), which fails for most arguments and never encodes back. While a code
# object holding one is rewritten, `bytecode` is told to keep that argument as the raw int
# (its own stack effect table reads the int right).
_RAW_ARG_OPCODES = {dis.opmap[name] for name in ("BUILD_INTERPOLATION",) if name in dis.opmap}


@contextlib.contextmanager
def raw_args(code):
    """Within: `bytecode` keeps the raw argument of the instructions it mishandles in code."""
    from bytecode import instr as bytecode_instr
    table = getattr(bytecode_instr, "FORMAT_VALUE_OPS", None)
    found = _RAW_ARG_OPCODES & set(code.co_code[::2]) & (table or set())
    if not found:
        yield
        return
    table -= found
    try:
        yield
    finally:
        table |= found


def fix_cell_loads(code, is_site):
    """3.13: in the code `bytecode` produced, a cell probe is `LOAD_DEREF v; LOAD_CONST site;
    CONTAINS_OP` (`is_site(const)` tells a site constant): make its LOAD_DEREF a LOAD_FAST of
    the same slot. (Every other probe starts with COPY, or is `LOAD_CONST site; UNARY_INVERT`.)"""
    if not env.PY313_PLUS:
        return code
    raw = bytearray(code.co_code)
    window = []
    for ins in dis.get_instructions(code):
        if ins.opname == "EXTENDED_ARG":
            continue  # a prefix of the next instruction, not an instruction of its own
        window = (window + [ins])[-3:]
        if len(window) == 3 and window[0].opname == "LOAD_DEREF" and \
                window[1].opname == "LOAD_CONST" and is_site(window[1].argval) and \
                window[2].opname == "CONTAINS_OP":
            raw[window[0].offset] = dis.opmap["LOAD_FAST"]
    return code.replace(co_code=bytes(raw)) if raw != code.co_code else code


# Subscripts: (kind, stack depth of the container, depth of the key) before the instruction.
_ITEM_OPS = {"STORE_SUBSCR": ("item_write", 2, 1), "DELETE_SUBSCR": ("item_delete", 2, 1)}
# PYVERSIONS: 3.14 folds BINARY_SUBSCR into BINARY_OP with the NB_SUBSCR argument (item and
# constant-slice reads: `d[k]`, `lst[1:2]`); `item_op` tells it from the arithmetic ones.
if env.PY314_PLUS:
    _ITEM_OPS["BINARY_OP"] = ("item_read", 2, 1)

    def subscript():
        """The instructions of a subscript load, `container[key]`."""
        return [Instr("BINARY_OP", BinaryOp.SUBSCR)]

    def item_op(instr):
        """(kind, container depth, key depth) of a subscript instruction, or None."""
        if instr.name == "BINARY_OP" and instr.arg != BinaryOp.SUBSCR:
            return None
        return _ITEM_OPS[instr.name]
else:
    _ITEM_OPS["BINARY_SUBSCR"] = ("item_read", 2, 1)

    def subscript():
        """The instructions of a subscript load, `container[key]`."""
        return [Instr("BINARY_SUBSCR")]

    def item_op(instr):
        """(kind, container depth, key depth) of a subscript instruction, or None."""
        return _ITEM_OPS[instr.name]
ITEM_OPS = _ITEM_OPS.keys()
# PYVERSIONS: 3.12+ has BINARY_SLICE / STORE_SLICE (container below start and end); 3.11 goes
# through BUILD_SLICE and BINARY_SUBSCR with a slice key, which the runtime recognises.
SLICE_OPS = {"BINARY_SLICE": ("slice_read", 3), "STORE_SLICE": ("slice_write", 3)}
CONTAINS_OPS = {"CONTAINS_OP"}  # stack [..., key, container]
# Iteration's start, stack [..., iterable]: `for`, comprehensions, `yield from` (a generator
# delegated to is no container, and the runtime ignores it). PYVERSIONS: 3.15 folds
# GET_YIELD_FROM_ITER into GET_ITER (with a non-zero argument).
ITER_OPS = {"GET_ITER", "GET_YIELD_FROM_ITER"}

# PYVERSIONS: instructions that push a constant: 3.14 loads small ints with LOAD_SMALL_INT
# (they leave co_consts), 3.14 loads AssertionError and 3.15 also None, True, False and more
# with LOAD_COMMON_CONSTANT. None of them can raise.
CONST_LOADS = {"LOAD_CONST", "LOAD_SMALL_INT", "LOAD_COMMON_CONSTANT"}
# A slice assignment reads the whole value it assigns: where the value lies, by instruction
# (3.11 and 3-bound slices: BUILD_SLICE then STORE_SUBSCR with [value, container, slice]).
SLICE_VALUE_DEPTH = {"STORE_SLICE": 4, "STORE_SUBSCR": 3}


def makes_slice_key(instr):
    """Whether `instr`, just before a STORE_SUBSCR, pushes a slice as its key. PYVERSIONS:
    3.14 loads a constant slice (`a[0:2] = b`) with LOAD_CONST, older versions build it."""
    return instr.name == "BUILD_SLICE" or instr.name == "LOAD_CONST" and \
        isinstance(instr.arg, slice)

# Concatenation: BINARY_OP's argument -> whether it is the in-place form (stack [..., a, b]);
# repetition (`[0] * n` is a list). Operators whose result is no list-like unless a class of the
# program makes it one (a new object then, which no other thread can see yet), and other
# instructions whose result is a number or a bool (numbers.py).
CONCAT_OPS = {BinaryOp.ADD: False, BinaryOp.INPLACE_ADD: True}
REPEAT_OPS = {BinaryOp.MULTIPLY, BinaryOp.INPLACE_MULTIPLY}
NOT_SEQUENCE_OPS = {getattr(BinaryOp, prefix + name) for prefix in ("", "INPLACE_") for name in (
    "SUBTRACT", "TRUE_DIVIDE", "FLOOR_DIVIDE", "REMAINDER", "POWER", "LSHIFT", "RSHIFT", "AND",
    "OR", "XOR", "MATRIX_MULTIPLY")}
# Operators that no list-like supports (a bytearray supports `%`): an operand of one that is
# not a number raises.
SEQUENCE_REFUSED_OPS = NOT_SEQUENCE_OPS - {BinaryOp.REMAINDER, BinaryOp.INPLACE_REMAINDER}
# PYVERSIONS: TO_BOOL is 3.13+.
NUMERIC_RESULT_OPS = {"UNARY_NEGATIVE", "UNARY_INVERT", "UNARY_NOT", "COMPARE_OP", "IS_OP",
                      "CONTAINS_OP", "TO_BOOL"}
# Constants no list-like can be concatenated with (`lst + 1` raises); `lst += "ab"` extends.
NOT_ADDABLE = (int, float, complex, type(None))

# PYVERSIONS: 3.13 folds a bool conversion into COMPARE_OP (EQ_CAST / NE_CAST).
EQUALITY = {Compare.EQ, Compare.NE} | {getattr(Compare, n) for n in ("EQ_CAST", "NE_CAST")
                                       if hasattr(Compare, n)}

# PYVERSIONS: the instruction a call's probe goes before (3.11: PRECALL n, never between it and
# CALL), and how deep the callable lies below the n arguments in the NULL form (`LOAD_GLOBAL
# (True, f)` pushes [NULL, f] on 3.11/3.12 and [f, NULL] on 3.13).
CALL_START = "PRECALL" if env.PY311 else "CALL"
CALLABLE_ABOVE_ARGS = 2 if env.PY313_PLUS else 1

# -- line probes (coverage): where sys.settrace reports "line" events -------------------------

# PYVERSIONS: 3.12+ trace lines through sys.monitoring, which fires only on "marked"
# instructions (the first of a line in code order, jump landings, exception handlers) and
# only when the previous instruction had another line or was RESUME (instrumentation.c).
# 3.11 fires on every change of line and on backward edges (ceval.c maybe_call_line_trace).
LINE_EVENTS_NEED_MARK = env.PY312_PLUS
# PYVERSIONS: 3.12+: skipped when marking the first instruction of each line; 3.14+ also
# POP_ITER, the exhausted loop's landing (measured: the line after it fires no event when it is
# the line before END_FOR).
NEVER_STARTS_LINE = {"END_FOR", "END_SEND", "RESUME", "END_ASYNC_FOR"} | (
    {"POP_ITER"} if env.PY314_PLUS else set())
NOT_MARKED_AS_HANDLER = {"END_ASYNC_FOR"}
# PYVERSIONS: line events start after the first RESUME (CPython's _co_firsttraceable). 3.15
# evaluates a generator expression's outermost iterable in a prologue before RETURN_GENERATOR,
# after a `RESUME` whose argument has bit 2 set; that prologue fires no line event (measured).
if env.PY315_PLUS:
    def starts_tracing(instr):
        return instr.name == "RESUME" and not instr.arg & 4
else:
    def starts_tracing(instr):
        return instr.name == "RESUME"
# Never an event (and never a probe position: see NO_INSERT_BEFORE).
NEVER_FIRES_LINE = {"RESUME"} | NO_INSERT_BEFORE
# PYVERSIONS: an exhausted FOR_ITER lands past its label: 3.12 skips END_FOR, 3.13 END_FOR
# and the POP_TOP after it (measured with opcode traces), 3.14+ END_FOR, landing on POP_ITER.
JUMP_LANDING_SKIP = {"FOR_ITER": 1} if env.PY314_PLUS else {"FOR_ITER": 2} if env.PY313_PLUS \
    else {"FOR_ITER": 1} if env.PY312_PLUS else {}
# PYVERSIONS: 3.12+ settrace also reports a JUMP_BACKWARD within one line (its JUMP callback;
# 3.11 fires on any backward edge, see lines.fires).
BACKWARD_SAME_LINE_FIRES = {"JUMP_BACKWARD"}
# Entered only by an exception, with a cleanup region that expects the stack it leaves: the
# probe goes after it.
PROBE_AFTER = {"PUSH_EXC_INFO"}
# PYVERSIONS: 3.11-3.13 suspend a frame only at YIELD_VALUE (`await` and `yield from` loop
# through SEND, a jump): the line after it may never run (chains.py).
SUSPENDS = {"YIELD_VALUE"}

# PYVERSIONS: local loads that can never raise (merge.py folds a line probe into an access
# after them). 3.12+ compile LOAD_FAST only for a local proven bound (LOAD_FAST_CHECK
# elsewhere), and 3.13 its pair form; LOAD_FAST_AND_CLEAR pushes NULL for an unbound one.
# 3.11's LOAD_FAST raises on an unbound local: there only arguments never deleted qualify.
# 3.14's borrowed forms (LOAD_FAST_BORROW*, most fast loads) are compiled for bound locals too.
if env.PY312_PLUS:
    _BOUND_LOADS = {"LOAD_FAST", "LOAD_FAST_LOAD_FAST", "LOAD_FAST_AND_CLEAR",
                    "LOAD_FAST_BORROW", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"}

    def never_raising_load(code, instrs):
        """A test of `instr`: a load of a local that cannot raise, in `code`."""
        return lambda instr: instr.name in _BOUND_LOADS
else:
    def never_raising_load(code, instrs):
        """A test of `instr`: a load of a local that cannot raise, in `code`."""
        nargs = code.co_argcount + code.co_kwonlyargcount
        nargs += bool(code.co_flags & inspect.CO_VARARGS)
        nargs += bool(code.co_flags & inspect.CO_VARKEYWORDS)
        deleted = {i.arg for i in instrs if isinstance(i, Instr) and i.name == "DELETE_FAST"}
        bound = set(code.co_varnames[:nargs]) - deleted
        return lambda instr: instr.name == "LOAD_FAST" and instr.arg in bound
