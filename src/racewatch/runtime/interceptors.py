"""Models of threading / queue / concurrent.futures / asyncio primitives as HB edges.

Each interceptor calls the real function and records an edge only if the call succeeded.
Locks themselves report their own events (runtime/lockhooks.py); what is patched here is what
locks do not say: thread start, end, join and is_alive, and the primitives modelled by their
documented semantics (Event, Semaphore, Barrier, Future; queues in queues.py). Their private
locks are inner: they order nothing (only the model does), while code run holding one is still
mutually excluded. threading's own bookkeeping locks are hidden: the thread model orders.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys
import threading

from racewatch.runtime import lockhooks, patching, queues, stacks, threads
from racewatch.runtime.patching import patch

_engine = None


def install(engine):
    """Patch the primitives; `engine` is the hot-path module in use. Modules racewatch does
    not need itself are patched when the program imports them: imported here, they would cost
    every start and could never be instrumented."""
    global _engine
    _engine = patching.engine = engine
    _threads()
    hide_thread_bookkeeping()
    _semaphores()
    _events()
    _barriers()
    for name, patcher in _ON_IMPORT.items():
        if name in sys.modules:
            patcher(sys.modules[name])
        else:
            _AfterImport.pending[name] = patcher
    if _AfterImport.pending:
        sys.meta_path.insert(0, _AfterImport)


def on_import(name, patcher):
    """Run `patcher(module)` once the module `name` has been imported (now, if it already is)."""
    if name in sys.modules:
        patcher(sys.modules[name])
        return
    _AfterImport.pending[name] = patcher
    if _AfterImport not in sys.meta_path:
        sys.meta_path.insert(0, _AfterImport)


def uninstall():
    if _AfterImport in sys.meta_path:
        sys.meta_path.remove(_AfterImport)
    _AfterImport.pending.clear()
    patching.undo()


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


def ignored_types():
    """Objects whose attributes are per-thread, never shared."""
    return (threading.local,)


# -- threads -----------------------------------------------------------------------------------

def _threads():
    Thread = threading.Thread
    start = patch(Thread, "start", lambda self: _start(self, start))
    bootstrap = patch(Thread, "_bootstrap_inner", lambda self: _bootstrap(self, bootstrap))
    join = patch(Thread, "join", lambda self, timeout=None: _join(self, join, timeout))
    is_alive = patch(Thread, "is_alive", lambda self: _is_alive(self, is_alive))
    shutdown = patch(threading, "_shutdown", lambda: _interpreter_shutdown(shutdown))
    # start() writes on after its own edge (3.14: the thread's context): the edge again where
    # start() makes the OS thread, seen when threading is instrumented
    for name in ("_start_joinable_thread", "_start_new_thread"):  # 3.13+, 3.11-3.12
        if name in vars(threading):
            _patch_spawn(name)
            break


def _patch_spawn(name):
    spawn = patch(threading, name,
                  lambda function, *args, **kwargs: _spawn(spawn, function, args, kwargs))


def _spawn(spawn, function, args, kwargs):
    thread = getattr(function, "__self__", None)
    if isinstance(thread, threading.Thread):
        _engine.happens_before(thread)
    return spawn(function, *args, **kwargs)


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
    thread.is_alive()  # the edge, once the thread ended: a timed join that returned early has none


def _is_alive(thread, is_alive):
    """False once the thread ended: its end happens-before what follows, as after join()."""
    alive = is_alive(thread)
    if not alive and thread._started.is_set():
        _engine.happens_after(thread)
    return alive


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
    return patching.unpatched(owner, name)


def hide_thread_bookkeeping():
    """threading's locks around its tables of threads (taken as every thread starts and ends)
    would order every thread after every thread that ended before it: the thread model says
    what thread start and end order. They are inner locks: they order nothing, but what
    threading does holding them is mutually excluded (seen when threading is instrumented).
    (A fork child makes new ones: called again there.)"""
    for name in ("_active_limbo_lock", "_shutdown_locks_lock"):
        lock = getattr(threading, name, None)
        if lock is not None:
            lockhooks.mark_inner(lock)


# -- primitives modelled by their semantics: their own locks are inner -------------------------

def inner_lock_of(cls, attribute, condition=True):
    """After cls.__init__, the lock in `attribute` (of the Condition there, if `condition`) is
    inner: the model orders, the lock only excludes."""
    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        lock = getattr(self, attribute, None)
        lock = getattr(lock, "_lock", None) if condition else lock
        if lock is not None:
            lockhooks.mark_inner(lock)

    real_init = patch(cls, "__init__", init)


def _semaphores():
    Semaphore, Bounded = threading.Semaphore, threading.BoundedSemaphore
    inner_lock_of(Semaphore, "_cond")

    def acquire(self, blocking=True, timeout=None):
        got = real_acquire(self, blocking, timeout)
        if got:
            _engine.happens_after(self)
        return got

    real_acquire = patch(Semaphore, "acquire", acquire)
    patch(Semaphore, "__enter__", acquire)  # the class aliases __enter__ = acquire
    real_release = patch(Semaphore, "release", lambda self, n=1: _release(self, real_release, n))
    bounded_release = patch(Bounded, "release",
                             lambda self, n=1: _release(self, bounded_release, n))


def _release(sem, release, n):
    _engine.happens_before(sem)
    return release(sem, n)


def _events():
    Event = threading.Event
    inner_lock_of(Event, "_cond")

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

    real_set = patch(Event, "set", set_)
    real_wait = patch(Event, "wait", wait)
    real_is_set = patch(Event, "is_set", is_set)


def _barriers():
    """Every party's arrival happens-before the action, and the action before every party
    leaves (the action runs in the last party to arrive, inside its wait)."""
    Barrier = threading.Barrier
    inner_lock_of(Barrier, "_cond")

    def wait(self, timeout=None):
        _engine.happens_before(self)
        index = real_wait(self, timeout)
        _engine.happens_after(self)
        return index

    def release(self):
        _engine.happens_after(self)
        try:
            return real_release(self)
        finally:
            _engine.happens_before(self)

    real_wait = patch(Barrier, "wait", wait)
    real_release = patch(Barrier, "_release", release)


# -- concurrent.futures ------------------------------------------------------------------------

def _futures_thread(futures_thread):
    WorkItem = futures_thread._WorkItem

    def work_init(self, *args, **kwargs):
        real_work_init(self, *args, **kwargs)
        _engine.happens_before(self)  # submit happens-before the task starts

    def work_run(self, *args, **kwargs):
        _engine.happens_after(self)
        return real_work_run(self, *args, **kwargs)

    real_work_init = patch(WorkItem, "__init__", work_init)
    real_work_run = patch(WorkItem, "run", work_run)


def _futures_base(futures_base):
    Future = futures_base.Future
    inner_lock_of(Future, "_condition")
    for waiter in ("_AsCompletedWaiter", "_AllCompletedWaiter"):  # wait() and as_completed()
        if hasattr(futures_base, waiter):
            inner_lock_of(getattr(futures_base, waiter), "lock", condition=False)

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
            _engine.happens_after(after_done)  # after what its registrant did before
            _engine.happens_after(future)
            return fn(future)
        _engine.happens_before(after_done)  # the future's condition hands fn over
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

    real_set_result = patch(Future, "set_result", set_result)
    real_set_exception = patch(Future, "set_exception", set_exception)
    real_result = patch(Future, "result", result)
    real_exception = patch(Future, "exception", exception)
    real_add_done_callback = patch(Future, "add_done_callback", add_done_callback)
    real_wait = patch(futures_base, "wait", wait)
    real_as_completed = patch(futures_base, "as_completed", as_completed)
    package = sys.modules.get("concurrent.futures")
    if package is not None and "wait" in package.__dict__:  # already re-exported the originals
        patch(package, "wait", wait)
        patch(package, "as_completed", as_completed)


# -- asyncio -----------------------------------------------------------------------------------

def _asyncio(base_events):
    loop_type = base_events.BaseEventLoop

    def call_soon_threadsafe(self, callback, *args, context=None):
        def after_call(*call_args):  # the wrapper is also the sync object of this one call
            _engine.happens_after(after_call)
            return callback(*call_args)
        _engine.happens_before(after_call)
        return real(self, after_call, *args, context=context)

    real = patch(loop_type, "call_soon_threadsafe", call_soon_threadsafe)


# Patched once the program imports them (or at once if it already has).
_ON_IMPORT = {"queue": queues.patch_queue, "multiprocessing.queues": queues.patch_multiprocessing,
              "concurrent.futures._base": _futures_base,
              "concurrent.futures.thread": _futures_thread, "asyncio.base_events": _asyncio}
