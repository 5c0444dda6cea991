"""Choose the hot-path implementation and make it the engine probes' tokens belong to.

Every probe is a token constant (rewriter/instrument.py): nothing of racewatch's is bound in
builtins, where a program listing `builtins.__dict__` would see it.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import importlib
import sys


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
    """Make `impl` the engine of the tokens made from now on, and switch it on."""
    global active, engine
    active = engine = impl
    impl.enable(True)


def uninstall_api():
    global active, engine
    if engine is not None:
        engine.enable(False)
    active = engine = None
