"""Models of queue hand-offs: queue.Queue (and its subclasses), multiprocessing.Queue.

queue.Queue is modelled by what it promises, as Go's race detector models channels:
- a put happens-before the puts and gets after it (the items behind it, and the one it adds);
- with maxsize=n, the k-th get happens-before the (k+n)-th put completes (the room it made),
  whether or not that put had to wait, and no other get does;
- each task_done happens-before the join() it releases.
Its mutex is an inner lock: it orders nothing else (a get does not order the puts that merely
follow it), but code that runs holding it (a subclass's _put and _get, item comparisons of a
PriorityQueue) is mutually excluded. The k-th get and put are counted where the queue itself
says so while holding its mutex: in its not_full / not_empty notify. (queue.SimpleQueue is
C: its put and get report a put -> get edge themselves, through the lock hooks.)
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import sys
import threading
import weakref

from racewatch.runtime import lockhooks, patching


class _Slot:
    """A sync object of its own (one per capacity slot of a bounded queue)."""

    __slots__ = ("__weakref__",)


class _Capacity:
    """How many gets and puts a bounded queue completed, and its slots: get k releases into
    slot k % n, and put k + n acquires from it."""

    __slots__ = ("gets", "puts", "slots")

    def __init__(self):
        self.gets = self.puts = 0
        self.slots = []

    def slot(self, count, size):
        while len(self.slots) < size:
            self.slots.append(_Slot())
        return self.slots[count % size]


# id(Condition) -> (code of the queue method that counts, role, weakref to its queue,
# _Capacity, weakref to the Condition): an entry leaves as its Condition dies (before the id
# can be reused). Keyed by id rather than a WeakKeyDictionary: every notify of every Condition
# looks here, and a lookup by id makes no weak reference each time.
_roles = {}


def _track(condition, role):
    key = id(condition)
    _roles[key] = (*role, weakref.ref(condition, lambda _, key=key: _roles.pop(key, None)))


def patch_queue(queue):
    Queue = queue.Queue
    real_put, real_get = Queue.put, Queue.get

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        lockhooks.mark_inner(self.mutex)
        capacity, ref = _Capacity(), weakref.ref(self)
        # a put notifies not_empty, a get not_full (the notify counts when made there)
        _track(self.not_empty, (real_put.__code__, "put", ref, capacity))
        _track(self.not_full, (real_get.__code__, "get", ref, capacity))

    roles, caller = _roles.get, sys._getframe

    def notify(self, n=1):
        role = roles(id(self))
        # the caller's code by identity: hashing a code object costs ~1000 instructions
        if role is not None and caller(1).f_code is role[0]:
            _capacity_edge(*role)
        return real_notify(self, n)

    def put(self, item, block=True, timeout=None):
        engine = patching.engine
        engine.happens_after(self)   # after the puts before it...
        engine.happens_before(self)  # ...and before the gets after it, even one that runs
        return real_put(self, item, block, timeout)  # as soon as the real put lets it

    def get(self, block=True, timeout=None):
        item = real_get(self, block, timeout)
        patching.engine.happens_after(self)
        return item

    def task_done(self):
        patching.engine.happens_before(self.all_tasks_done)
        return real_task_done(self)

    def join(self):
        real_join(self)
        patching.engine.happens_after(self.all_tasks_done)

    real_init = patching.patch(Queue, "__init__", init)
    real_notify = patching.patch(threading.Condition, "notify", notify)
    patching.patch(Queue, "put", put)
    patching.patch(Queue, "get", get)
    real_task_done = patching.patch(Queue, "task_done", task_done)
    real_join = patching.patch(Queue, "join", join)
    if getattr(queue.SimpleQueue, "__module__", None) == "_queue":
        # C: its put and get report their own edges. (A copy of queue made with _queue
        # blocked, as CPython's tests make one, has the pure-Python SimpleQueue instead, built
        # on a modelled Semaphore; importing _queue for it would fail as the import must.)
        lockhooks.hook_simple_queue()


def _capacity_edge(_, role, ref, capacity, __):
    """The queue's mutex is held: counts are in the queue's own order."""
    queue = ref()
    size = getattr(queue, "maxsize", 0) if queue is not None else 0
    if not isinstance(size, int) or size <= 0:
        return
    if role == "get":
        capacity.gets += 1
        patching.engine.happens_before(capacity.slot(capacity.gets, size))
    else:
        capacity.puts += 1
        if capacity.puts > size:
            patching.engine.happens_after(capacity.slot(capacity.puts, size))


def patch_multiprocessing(queues):
    """multiprocessing.Queue.put(obj) hands obj to a feeder thread that pickles it later
    (running its __getstate__ or __reduce__): the put happens-before that pickling."""
    Queue = queues.Queue

    def put(self, obj, block=True, timeout=None):
        patching.engine.happens_before(self._buffer)
        return real_put(self, obj, block, timeout)

    def feed(buffer, *args, **kwargs):
        return real_feed(_FeederBuffer(buffer), *args, **kwargs)

    real_put = patching.patch(Queue, "put", put)
    real_feed = patching.patch(Queue, "_feed", staticmethod(feed)).__func__


class _FeederBuffer:
    """What the feeder thread sees of a queue's buffer: each item it takes is ordered after
    the put that added it."""

    __slots__ = ("buffer",)

    def __init__(self, buffer):
        self.buffer = buffer

    def popleft(self):
        item = self.buffer.popleft()
        patching.engine.happens_after(self.buffer)
        return item

    def __getattr__(self, name):
        return getattr(self.buffer, name)

    def __len__(self):
        return len(self.buffer)

    def __bool__(self):
        return bool(self.buffer)
