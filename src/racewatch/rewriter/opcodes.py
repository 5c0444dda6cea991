"""Every per-version bytecode fact the rewriter needs, as data (grep PYVERSIONS)."""

from bytecode import Instr

from racewatch import env

# Probes are loaded by `LOAD_GLOBAL (True, name)` from builtins. The names are not identifiers,
# so user code can never shadow them and rewritten code stays marshal-able (cacheable).
# One name per hot-path function instead of one namespace object: the extra method load costs
# 4-5 ns per access on 3.11/3.12 (measured), a third of the whole C fast path.
API_PREFIX = "@racewatch."
API_FUNCTIONS = ("read", "write", "atomic_read", "atomic_write", "acquire", "release", "sync",
                 "hit")


def api_name(function):
    return API_PREFIX + function


def load_api(function):
    """Push a callable in the non-method call form: `LOAD_GLOBAL (True, name)` puts the NULL
    where each version's CALL expects it (below on 3.11/3.12, above on 3.13)."""
    return Instr("LOAD_GLOBAL", (True, api_name(function)))


# PYVERSIONS: 3.11 pairs every `CALL n` with a preceding `PRECALL n`.
if env.PY311:
    def call(nargs):
        return [Instr("PRECALL", nargs), Instr("CALL", nargs)]
else:
    def call(nargs):
        return [Instr("CALL", nargs)]


# PYVERSIONS: attribute loads. 3.11 has LOAD_ATTR name and LOAD_METHOD name; 3.12+ folds the
# method form into LOAD_ATTR with the argument `(is_method, name)`. Both leave the object on
# top of the stack before they run. Method loads are real reads (`o.cb()` may read an
# instance attribute), so both forms are instrumented.
if env.PY311:
    ATTR_LOADS = {"LOAD_ATTR": lambda arg: arg, "LOAD_METHOD": lambda arg: arg}
else:
    ATTR_LOADS = {"LOAD_ATTR": lambda arg: arg[1]}

# Lock call sites: `x.acquire()` / `x.release()` load these names from the lock; `with x:` starts
# with BEFORE_WITH (PYVERSIONS: 3.11-3.13; 3.14 spells it differently). Before either, the
# object on top of the stack is swapped for the runtime's `sync(obj, site)`: obj itself, or a
# proxy that records the acquire/release when obj is a lock.
SYNC_METHOD_NAMES = {"acquire", "release"}
WITH_ENTERS = {"BEFORE_WITH"}

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
