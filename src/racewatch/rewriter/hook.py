"""Meta-path finder that asks the rest of sys.meta_path, then wraps the loader it gets."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import sys

from racewatch import env, runtime
from racewatch.rewriter import cache, interop, sites


class Instrumenter:
    """Turns a source file's code into instrumented code, through the cache."""

    def __init__(self, options=(), use_cache=True, race=True, line_probes=False, chained=False):
        self.probes = {"race": race, "line_probes": line_probes, "chained": chained}
        self.fingerprint = cache.fingerprint(*options, race, line_probes, chained,
                                             env.lazy_imports_all())
        self.use_cache = use_cache
        self.rewriting = _thread._local()  # .depth: code_for calls in progress on this thread

    @staticmethod
    def load_rewriter():
        """Import the rewriting pass and all it imports (`bytecode`, and through it copy,
        dataclasses, typing, dis, inspect...). Done before the hook goes in when the selection
        could reach those modules: importing the pass lazily while one of them is being
        imported, instrumented, would find it half-initialized."""
        from racewatch.rewriter import instrument  # noqa: F401

    def busy(self):
        """True while this thread is rewriting: what the pass imports then is racewatch's own
        import, never instrumented (and never re-entered while half-imported)."""
        return getattr(self.rewriting, "depth", 0) > 0

    def code_for(self, path, get_original):
        """Instrumented code for the source file `path`; `get_original()` compiles it."""
        rewriting = self.rewriting
        rewriting.depth = getattr(rewriting, "depth", 0) + 1
        try:
            return self._code_for(path, get_original)
        finally:
            rewriting.depth -= 1

    def _code_for(self, path, get_original):
        stamp = None
        entry = None
        if self.use_cache:
            try:
                stamp = cache.source_stamp(path)
            except OSError:
                stamp = None
            if stamp is not None:
                entry = cache.load(path, self.fingerprint, stamp)
        if entry is None:
            original = get_original()
            if original is None:
                return None
            # imported here: a warm start never needs the pass, `bytecode` or `ast` (see
            # load_rewriter for when it is imported before the hook)
            from racewatch.rewriter import instrument
            entry = instrument.instrument_module(original, path, **self.probes)
            if stamp is not None:
                cache.store(path, self.fingerprint, stamp, entry)
        code, records, layout = entry
        return sites.relocate(code, layout, sites.SITES.register(path, records), runtime.token)


class _InstrumentingLoader:
    """Mixed in front of the found loader's own class: only `get_code` changes, so importlib's
    exec_module (and its traceback frame removal) and every other loader method stay as they
    were."""

    _racewatch_instrumenter = None

    def get_code(self, fullname):
        original = super().get_code
        return self._racewatch_instrumenter.code_for(self.get_filename(fullname),
                                                     lambda: original(fullname))


_SUBCLASSES = {}


def _wrap(loader, instrumenter):
    cls = type(loader)
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (_InstrumentingLoader, cls),
                   {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        _SUBCLASSES[cls] = sub
    wrapped = object.__new__(sub)
    wrapped.__dict__.update(vars(loader))
    wrapped._racewatch_instrumenter = instrumenter
    return wrapped


def _instrumentable(spec):
    loader = spec.loader
    return (spec.origin is not None and spec.origin.endswith(".py")
            and hasattr(loader, "get_code") and hasattr(loader, "get_filename")
            and hasattr(loader, "__dict__") and not isinstance(loader, _InstrumentingLoader))


class ImportHook:
    """Finds specs through the finders behind it and instruments the selected modules."""

    def __init__(self, selector, instrumenter, warn=None):
        self.selector = selector
        self.instrumenter = instrumenter
        self.warn = warn  # warn(text): a selected module racewatch cannot instrument
        self._warned = set()

    def find_spec(self, fullname, path=None, target=None):
        if not self.selector.wants_name(fullname):  # cheap bail-out before any file lookup
            return None
        if self.instrumenter.busy():
            return None  # imported by the rewriting pass itself: loaded as it is
        spec = self._find_elsewhere(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        if _instrumentable(spec):
            if self.selector.wants(fullname, spec.origin):
                spec.loader = _wrap(spec.loader, self.instrumenter)
        else:  # a loader without get_code that racewatch knows (pytest's assertion rewriting)
            foreign = interop.foreign_loader(spec.loader, self.instrumenter)
            if foreign is not None and self.selector.wants(fullname, spec.origin):
                spec.loader = foreign
            elif (self.warn is not None and (spec.origin or "").endswith(".pyc")
                  and self.selector.wants(fullname, spec.origin)):
                self._sourceless(fullname, spec.origin)
        return spec

    def _sourceless(self, fullname, origin):
        """Once per top-level package: its modules have no source to rewrite."""
        top = fullname.partition(".")[0]
        if top not in self._warned:
            self._warned.add(top)
            self.warn(f"{top} has no source files ({origin} is a .pyc alone), so it is not "
                      "instrumented")

    def _find_elsewhere(self, fullname, path, target):
        finders = list(sys.meta_path)
        rest = finders[finders.index(self) + 1:] if self in finders else finders
        for finder in rest:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self):
        pass


class Installed:
    """What `install()` returns: uninstalls the hook, also as a context manager."""

    def __init__(self, hook):
        self.hook = hook

    def uninstall(self):
        try:
            sys.meta_path.remove(self.hook)
        except ValueError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.uninstall()


def install(selector, instrumenter=None, warn=None):
    """Put the hook first on sys.meta_path; modules imported before this are left alone."""
    instrumenter = instrumenter or Instrumenter()
    if selector.explicit:
        instrumenter.load_rewriter()  # include patterns may name what the pass imports
    hook = ImportHook(selector, instrumenter, warn)
    sys.meta_path.insert(0, hook)
    return Installed(hook)
