"""Choose the hot-path implementation and bind it to the names rewritten code calls."""

import builtins
import importlib
import sys

# Probes call these through builtins names that are not identifiers, so user code can never
# shadow them and rewritten code stays marshal-able (cacheable). One name per hot-path
# function rather than one namespace object: the extra method load costs 4-5 ns per access on
# 3.11/3.12 (measured), a third of the whole C fast path.
API_PREFIX = "@racewatch."
API_FUNCTIONS = ("read", "write")


def api_name(function):
    return API_PREFIX + function


def load(name):
    """The hot-path module for the `runtime` option: `c` (falls back to `python`) or `python`."""
    if name == "c":
        try:
            return importlib.import_module("racewatch.runtime._fast")
        except Exception as exc:  # noqa: BLE001 - a broken build must not stop the program
            sys.stderr.write(f"racewatch: C runtime unavailable ({exc}); "
                             "using the pure-Python runtime\n")
    return importlib.import_module("racewatch.runtime.api")


# The hot-path module bound to the probes' names, or None when racewatch is not running.
active = None
# The engine whose tokens code loaded from now on gets: it stays when racewatch stops (its
# tokens are then switched off), so code loaded by then keeps the engine of the session.
engine = None


# The coverage collector's factory of line probes' hit tokens (`hit_token(site)`), while it counts.
hit_token = None


def token(site, is_write, key, line=None):
    """The constant of the token probe `site` (see rewriter/instrument.py); `is_write` is None
    for a line probe. A race probe with a `line` site also counts that line (a merged probe,
    rewriter/merge.py)."""
    hit = None if line is None or hit_token is None else hit_token(line)
    if is_write is None:
        if hit_token is None:
            from racewatch.runtime import null
            return null.Token()
        return hit_token(site)
    if engine is None:
        from racewatch.runtime import null
        return null.Token() if hit is None else null.LineToken(hit)
    return engine.token(site, is_write, key, hit)


def install_api(impl):
    """Bind `impl`'s hot-path functions to the builtins names probes load."""
    global active, engine
    active = engine = impl
    impl.enable(True)
    for function in API_FUNCTIONS:
        setattr(builtins, api_name(function), getattr(impl, function))


def uninstall_api():
    global active, engine
    if engine is not None:
        engine.enable(False)
    active = engine = None
    for function in API_FUNCTIONS:
        builtins.__dict__.pop(api_name(function), None)
