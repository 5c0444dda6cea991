"""Models of threading / queue / concurrent.futures / asyncio primitives as HB edges.

Each interceptor calls the real function and records an edge only if the call succeeded.
Locks themselves (C types that cannot be patched) are seen at instrumented call sites through
the runtime's `sync` proxy; everything written in Python is patched here, for all code.
"""

import _queue
import _thread
import sys
import threading
import weakref

from racewatch.runtime import stacks, threads

_patches = []  # (owner, name, original) to undo
_engine = None


def _patch(owner, name, replacement):
    original = owner.__dict__[name]
    _patches.append((owner, name, original))
    setattr(owner, name, replacement)
    return original


def install(engine):
    """Patch the primitives; `engine` is the hot-path module in use. Modules racewatch does
    not need itself are patched when the program imports them: imported here, they would cost
    every start and could never be instrumented."""
    global _engine
    _engine = engine
    _threads()
    _conditions()
    _semaphores()
    _events()
    _barriers()
    for name, patch in _ON_IMPORT.items():
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            _AfterImport.pending[name] = patch
    if _AfterImport.pending:
        sys.meta_path.insert(0, _AfterImport)


def lock_factories(on_created):
    """Patch threading's lock factories so that `on_created(lock, stack)` hears where each
    lock is made (for lock-order reports). threading.Lock is patched only where it is a
    factory function (see env.THREADING_LOCK_IS_CLASS); RLock always is one. Condition,
    Event, Semaphore and Barrier make their locks through these names too."""
    from racewatch import env

    def factory(real):
        def make(*args, **kwargs):
            lock = real(*args, **kwargs)
            on_created(lock, stacks.capture())
            return lock
        make.__name__ = make.__qualname__ = real.__name__
        make.__doc__ = real.__doc__
        return make

    names = ("RLock",) if env.THREADING_LOCK_IS_CLASS else ("Lock", "RLock")
    for name in names:
        _patch(threading, name, factory(threading.__dict__[name]))


def on_import(name, patch):
    """Run `patch(module)` once the module `name` has been imported (now, if it already is)."""
    if name in sys.modules:
        patch(sys.modules[name])
        return
    _AfterImport.pending[name] = patch
    if _AfterImport not in sys.meta_path:
        sys.meta_path.insert(0, _AfterImport)


def uninstall():
    if _AfterImport in sys.meta_path:
        sys.meta_path.remove(_AfterImport)
    _AfterImport.pending.clear()
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)


class _AfterImport:
    """A meta-path finder that patches a module once its own code has run."""

    pending = {}  # module name -> patch(module)

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        patch = cls.pending.get(fullname)
        if patch is None:
            return None
        finders = list(sys.meta_path)
        for finder in finders[finders.index(cls) + 1:] if cls in finders else finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
            del cls.pending[fullname]
        return spec


class _PatchingLoader:
    """Wraps a loader: runs the module, then patches it."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def proxy_types():
    """Types whose acquire/release the runtime's `sync` proxy records, mapped to a function
    giving the object whose clock they use (None: the object itself)."""
    lock_types = {type(threading.Lock()): None, type(threading.RLock()): None}
    lock_types[threading.Condition] = lambda cond: cond._lock
    return lock_types


def ignored_types():
    """Objects whose attributes are per-thread, never shared."""
    return (threading.local,)


# -- threads -----------------------------------------------------------------------------------

def _threads():
    Thread = threading.Thread
    start = _patch(Thread, "start", lambda self: _start(self, start))
    bootstrap = _patch(Thread, "_bootstrap_inner", lambda self: _bootstrap(self, bootstrap))
    join = _patch(Thread, "join", lambda self, timeout=None: _join(self, join, timeout))
    shutdown = _patch(threading, "_shutdown", lambda: _interpreter_shutdown(shutdown))


def _start(thread, start):
    threads.starting(thread, _engine.current_tid(), stacks.capture())
    _engine.happens_before(thread)
    return start(thread)


def _bootstrap(thread, bootstrap):
    _engine.happens_after(thread)  # first event of the new thread: its clock starts here
    tid = _engine.current_tid()
    threads.begin(tid, thread)
    try:
        bootstrap(thread)
    finally:
        _engine.thread_end(thread)
        threads.end(tid)


def _join(thread, join, timeout):
    join(thread, timeout)
    if not thread.is_alive():  # a timed join that returned early gives no edge
        _engine.happens_after(thread)


def _interpreter_shutdown(shutdown):
    """After the interpreter's final wait, every finished thread happens-before atexit."""
    shutdown()
    threads_joined()


def threads_joined():
    """Every finished thread happens-before what runs now (threading._shutdown has waited)."""
    for thread in threads.finished_threads():
        _engine.happens_after(thread)


def unpatched(owner, name):
    """What `owner.name` was before racewatch patched it."""
    for patched_owner, patched_name, original in _patches:
        if patched_owner is owner and patched_name == name:
            return original
    return getattr(owner, name)


# -- locks' relatives --------------------------------------------------------------------------

def _conditions():
    Condition = threading.Condition
    wait = _patch(Condition, "wait", lambda self, timeout=None: _wait(self, wait, timeout))


def _wait(cond, wait, timeout):
    # wait = release, then acquire on return (always reacquired, even on timeout). Edges
    # only, no lockset change: the lock is held before and after.
    lock = cond._lock
    _engine.happens_before(lock)
    try:
        return wait(cond, timeout)
    finally:
        _engine.happens_after(lock)


def _semaphores():
    Semaphore, Bounded = threading.Semaphore, threading.BoundedSemaphore

    def acquire(self, blocking=True, timeout=None):
        got = real_acquire(self, blocking, timeout)
        if got:
            _engine.happens_after(self)
        return got

    real_acquire = _patch(Semaphore, "acquire", acquire)
    _patch(Semaphore, "__enter__", acquire)  # the class aliases __enter__ = acquire
    real_release = _patch(Semaphore, "release", lambda self, n=1: _release(self, real_release, n))
    bounded_release = _patch(Bounded, "release",
                             lambda self, n=1: _release(self, bounded_release, n))


def _release(sem, release, n):
    _engine.happens_before(sem)
    return release(sem, n)


def _events():
    Event = threading.Event

    def set_(self):
        _engine.happens_before(self)
        return real_set(self)

    def wait(self, timeout=None):
        signalled = real_wait(self, timeout)
        if signalled:
            _engine.happens_after(self)
        return signalled

    def is_set(self):
        signalled = real_is_set(self)
        if signalled:
            _engine.happens_after(self)
        return signalled

    real_set = _patch(Event, "set", set_)
    real_wait = _patch(Event, "wait", wait)
    real_is_set = _patch(Event, "is_set", is_set)


def _barriers():
    def wait(self, timeout=None):
        _engine.happens_before(self)
        index = real_wait(self, timeout)
        _engine.happens_after(self)
        return index

    real_wait = _patch(threading.Barrier, "wait", wait)


# -- queues: a put happens-before the gets that come after it --------------------------------
# Every put and get of a queue.Queue holds the queue's one mutex, so a get is really ordered
# after all the puts before it, not only the one of its item: the queue is one sync object.
# (A per-item model would be weaker than the real synchronization: it would report what the
# queue's mutex orders, and it would cost memory for every item in flight.)

def _put(q, put, item, *args, **kwargs):
    _engine.happens_before(q)  # before the real put: a getter may run as soon as it returns
    return put(q, item, *args, **kwargs)


def _get(q, get, *args, **kwargs):
    item = get(q, *args, **kwargs)
    _engine.happens_after(q)
    return item


def _queues(queue):
    put = _patch(queue.Queue, "put", lambda self, *a, **k: _put(self, put, *a, **k))
    get = _patch(queue.Queue, "get", lambda self, *a, **k: _get(self, get, *a, **k))

    base = _queue.SimpleQueue

    class SimpleQueue(base):
        """queue.SimpleQueue with its hand-offs modelled (the C type cannot be patched)."""

        def put(self, item, block=True, timeout=None):
            return _put(self, base.put, item, block, timeout)

        def put_nowait(self, item):
            return _put(self, base.put_nowait, item)

        def get(self, block=True, timeout=None):
            return _get(self, base.get, block, timeout)

        def get_nowait(self):
            return _get(self, base.get_nowait)

    SimpleQueue.__module__ = "queue"
    _patch(queue, "SimpleQueue", SimpleQueue)


# -- concurrent.futures ------------------------------------------------------------------------

def _futures_thread(futures_thread):
    WorkItem = futures_thread._WorkItem

    def work_init(self, *args, **kwargs):
        real_work_init(self, *args, **kwargs)
        _engine.happens_before(self)  # submit happens-before the task starts

    def work_run(self, *args, **kwargs):
        _engine.happens_after(self)
        return real_work_run(self, *args, **kwargs)

    real_work_init = _patch(WorkItem, "__init__", work_init)
    real_work_run = _patch(WorkItem, "run", work_run)


def _futures_base(futures_base):
    Future = futures_base.Future

    def set_result(self, result):
        _engine.happens_before(self)
        return real_set_result(self, result)

    def set_exception(self, exception):
        _engine.happens_before(self)
        return real_set_exception(self, exception)

    def result(self, timeout=None):
        try:
            return real_result(self, timeout)
        finally:
            if self.done():
                _engine.happens_after(self)

    def exception(self, timeout=None):
        try:
            return real_exception(self, timeout)
        finally:
            if self.done():
                _engine.happens_after(self)

    def add_done_callback(self, fn):
        def after_done(future):
            _engine.happens_after(future)
            return fn(future)
        return real_add_done_callback(self, after_done)

    def wait(fs, timeout=None, return_when=futures_base.ALL_COMPLETED):
        done = real_wait(fs, timeout, return_when)
        for future in done.done:
            _engine.happens_after(future)
        return done

    def as_completed(fs, timeout=None):
        for future in real_as_completed(fs, timeout):
            _engine.happens_after(future)
            # handed over without this frame keeping it: the caller may drop it, and it dies,
            # before asking for the next (as with the real generator)
            handed = [future]
            del future
            yield handed.pop()

    real_set_result = _patch(Future, "set_result", set_result)
    real_set_exception = _patch(Future, "set_exception", set_exception)
    real_result = _patch(Future, "result", result)
    real_exception = _patch(Future, "exception", exception)
    real_add_done_callback = _patch(Future, "add_done_callback", add_done_callback)
    real_wait = _patch(futures_base, "wait", wait)
    real_as_completed = _patch(futures_base, "as_completed", as_completed)
    package = sys.modules.get("concurrent.futures")
    if package is not None and "wait" in package.__dict__:  # already re-exported the originals
        _patch(package, "wait", wait)
        _patch(package, "as_completed", as_completed)


# -- asyncio -----------------------------------------------------------------------------------

def _asyncio(base_events):
    loop_type = base_events.BaseEventLoop

    def call_soon_threadsafe(self, callback, *args, context=None):
        def after_call(*call_args):  # the wrapper is also the sync object of this one call
            _engine.happens_after(after_call)
            return callback(*call_args)
        _engine.happens_before(after_call)
        return real(self, after_call, *args, context=context)

    real = _patch(loop_type, "call_soon_threadsafe", call_soon_threadsafe)


# Patched once the program imports them (or at once if it already has).
_ON_IMPORT = {"queue": _queues, "concurrent.futures._base": _futures_base,
              "concurrent.futures.thread": _futures_thread, "asyncio.base_events": _asyncio}
