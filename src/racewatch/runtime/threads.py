"""What reports say about threads, for either runtime: names, creation stacks, status."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import weakref


class ThreadInfo:
    __slots__ = ("tid", "ref", "name", "parent", "created_at", "finished")

    def __init__(self, tid, thread, parent, created_at):
        self.tid = tid
        self.ref = weakref.ref(thread) if thread is not None else None
        self.name = thread.name if thread is not None else None
        self.parent = parent
        self.created_at = created_at
        self.finished = False

    def current_name(self):
        thread = self.ref() if self.ref is not None else None
        return thread.name if thread is not None else self.name


_infos = {}     # tid -> ThreadInfo
_starting = {}  # id(Thread) -> (parent tid, creation stack), between start() and the child


def starting(thread, parent_tid, stack):
    """Called in the parent by Thread.start, before the child runs."""
    _starting[id(thread)] = (parent_tid, stack)


def begin(tid, thread):
    """Called first thing in the child."""
    parent, stack = _starting.pop(id(thread), (None, ()))
    _infos[tid] = ThreadInfo(tid, thread, parent, stack)


def end(tid):
    info = _infos.get(tid)
    if info is not None:
        info.finished = True
        info.name = info.current_name()  # keep the final name once the Thread object is gone


def finished_threads():
    """Thread objects of threads that ended (for the interpreter's final join)."""
    result = []
    for info in list(_infos.values()):
        thread = info.ref() if info.ref is not None else None
        if info.finished and thread is not None:
            result.append(thread)
    return result


def info(tid):
    return _infos.get(tid)


def name(tid):
    """The thread's name (`MainThread` for thread 0), or None if unknown."""
    found = _infos.get(tid)
    if found is not None:
        return found.current_name()
    if tid == 0:
        import threading  # already imported: racewatch's interceptors patch it
        return threading.main_thread().name
    return None


def describe(tid):
    """`main thread`, or `thread T3 'worker-2'` as in the report headers."""
    if tid == 0:
        return "main thread"
    found = _infos.get(tid)
    name = found.current_name() if found is not None else None
    return f"thread T{tid} '{name}'" if name else f"thread T{tid}"


def reset():
    _infos.clear()
    _starting.clear()
