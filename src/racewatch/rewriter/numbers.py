"""Which operands of `+` in a code object can never be a list-like: the concatenation probes
the rewriter can leave out (numeric code adds numbers, and a probe per `+` would cost it dear).

An abstract interpretation of each straight-line stretch of instructions, then a fixpoint over
the local variables: a local is a non-list-like when every store to it is, or when the function
uses it where a list-like would raise (`i - 1`, `-i`, `n // 2 + i`: lists, bytearrays and deques
have no such operators); a parameter only by that use. Non-list-likes: constants, results of
arithmetic other than `+` and `*` (a class of the program could return a list from `-`: a new
one, which no other thread can see), `x + y` when x is one, `x * y` when both are, numeric
builtins' results (`len`, `int`..., unless the module rebinds the name) and the items of
`range(...)`. (Such a use is taken as a fact wherever it is in the function: a list-like that
takes another path and never reaches it goes unprobed at `+`.)
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from bytecode import Instr

from racewatch.rewriter import opcodes

NUMERIC_BUILTINS = frozenset(("len", "int", "float", "abs", "round", "ord", "hash", "id", "bool",
                              "str", "repr", "chr", "hex", "oct", "bin", "divmod", "pow",
                              "complex", "format", "isinstance", "callable"))

UNKNOWN = ("unknown",)
NOT_SEQUENCE = ("num",)
NUMBER = ("number",)  # a number or None: `lst + 1` and `lst += 1` raise, whatever lst is
TEXT = ("text",)      # a str or tuple constant: `lst + "ab"` raises (`lst += "ab"` extends)


def _const(value):
    if isinstance(value, opcodes.NOT_ADDABLE):
        return NUMBER
    return TEXT if isinstance(value, (str, tuple)) else NOT_SEQUENCE


def operands(bc, code, variables):
    """{id(instr): (left, right)} for each concatenation BINARY_OP of `bc`, and a test
    `sequence_free(value)` of those values once the locals are settled."""
    found = {}
    stores = []  # (local name, value stored)
    numeric = set()  # locals some operation shows to be no list-like (it would raise)
    stack = []
    for ins in bc:
        if not isinstance(ins, Instr):
            # a jump may land here, with other values on the stack; but a for loop's head is
            # jumped to with its own iterator on top
            stack = stack[-1:] if stack and stack[-1][0] == "range_iter" else []
            continue
        if ins.name == "BINARY_OP" and ins.arg in opcodes.SEQUENCE_REFUSED_OPS or \
                ins.name in ("UNARY_NEGATIVE", "UNARY_INVERT"):
            operands = stack[-2:] if ins.name == "BINARY_OP" else stack[-1:]
            numeric.update(v[1] for v in operands if v[0] == "local")
        elif ins.name == "BINARY_OP" and ins.arg in opcodes.CONCAT_OPS and len(stack) >= 2 and \
                stack[-2] in (NOT_SEQUENCE, NUMBER) and stack[-1][0] == "local":
            numeric.add(stack[-1][1])  # `2 * n + x`: a number plus x, so x is no list-like
        _step(ins, stack, found, stores, variables)
    nargs = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & 0x04) \
        + bool(code.co_flags & 0x08)
    params = set(code.co_varnames[:nargs])
    free = {name for name, _ in stores} - params | numeric
    changed = True
    while changed:  # a local stays free of list-likes only if everything stored in it is
        changed = False
        for name, value in stores:
            if name in free and name not in numeric and not _free(value, free):
                free.discard(name)
                changed = True
    return found, lambda value: _free(value, free)


def _free(value, free):
    tag = value[0]
    if tag in ("num", "number", "text", "range"):
        return True
    if tag == "local":
        return value[1] in free
    if tag == "add":
        return _free(value[1], free)
    if tag == "mul":
        return _free(value[1], free) and _free(value[2], free)
    return False


def _pop(stack):
    return stack.pop() if stack else UNKNOWN


def _step(ins, stack, found, stores, variables):
    name, arg = ins.name, ins.arg
    if name == "LOAD_CONST":
        stack.append(_const(arg))
    elif name in opcodes.CONST_LOADS:  # a small int, None, a bool, a builtin or an exception
        stack.append(NUMBER)          # class (opcodes.CONST_LOADS): nothing a list-like takes
    elif name in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_BORROW"):
        stack.append(("local", arg))
    elif name in ("LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"):
        stack.extend(("local", a) for a in arg)
    elif name == "LOAD_DEREF":
        stack.append(("cell", arg))
    elif name == "COPY":
        stack.append(stack[-arg] if len(stack) >= arg else UNKNOWN)
    elif name == "SWAP":
        if len(stack) >= arg:
            stack[-1], stack[-arg] = stack[-arg], stack[-1]
        else:
            stack[:] = []
    elif name == "STORE_FAST":
        stores.append((arg, _pop(stack)))
    elif name == "STORE_FAST_LOAD_FAST":
        stores.append((arg[0], _pop(stack)))
        stack.append(("local", arg[1]))
    elif name == "STORE_FAST_STORE_FAST":
        stores.append((arg[0], _pop(stack)))
        stores.append((arg[1], _pop(stack)))
    elif name == "BINARY_OP" and (arg in opcodes.CONCAT_OPS or arg in opcodes.REPEAT_OPS):
        right, left = _pop(stack), _pop(stack)
        if arg in opcodes.CONCAT_OPS:
            found[id(ins)] = (left, right)
            stack.append(("add", left, right))
        else:
            stack.append(("mul", left, right))
    elif name == "BINARY_OP" and arg in opcodes.NOT_SEQUENCE_OPS or \
            name in opcodes.NUMERIC_RESULT_OPS:
        pops, pushes = _effect(ins)
        del stack[max(0, len(stack) - pops):]
        stack.extend([NOT_SEQUENCE] * pushes)
    elif name == "LOAD_GLOBAL" and arg[1] in NUMERIC_BUILTINS | {"range"} and (
            variables is not None and arg[1] not in variables):
        pops, pushes = _effect(ins)
        stack.extend([("builtin", arg[1])] + [UNKNOWN] * (pushes - 1))
    elif name == "CALL":
        pops, pushes = _effect(ins)
        popped = [_pop(stack) for _ in range(pops)]
        callee = next((v[1] for v in popped if v[0] == "builtin"), None)
        result = ("range",) if callee == "range" else NOT_SEQUENCE if callee else UNKNOWN
        stack.extend([result] + [UNKNOWN] * (pushes - 1))
    elif name == "GET_ITER":
        source = _pop(stack)
        stack.append(("range_iter",) if source[0] == "range" else UNKNOWN)
    elif name == "FOR_ITER":
        source = _pop(stack)
        stack.extend([source, NOT_SEQUENCE if source[0] == "range_iter" else UNKNOWN])
    else:
        pops, pushes = _effect(ins)
        del stack[max(0, len(stack) - pops):]
        stack.extend([UNKNOWN] * pushes)


def _effect(ins):
    """(values popped, values pushed) by `ins`, not jumping."""
    try:
        pre, post = ins.pre_and_post_stack_effect(jump=False)
    except Exception:  # noqa: BLE001 - an instruction `bytecode` cannot tell: know nothing
        return 1 << 30, 0
    pops = -pre if pre < 0 else 0
    return pops, post + (pre if pre > 0 else 0)
