"""Real threads that run one step at a time, in the order a test gives (no sleeps, no timing)."""

import _thread
import threading


class Stepper:
    """`count` threads: index 0 is the caller, 1.. are real threads parked on raw locks.

    `stepper(i, fn, *args)` runs `fn(*args)` on thread i and returns its result once it is
    done, so the events a test makes happen in exactly the order it writes them. Raw `_thread`
    locks hand control over because no engine models them.
    """

    def __init__(self, count):
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._go = [None]
        self._job = None
        self._outcome = None
        self.idents = [_thread.get_ident()]
        self._threads = []
        for i in range(1, count):
            go = _thread.allocate_lock()
            go.acquire()
            self._go.append(go)
            thread = threading.Thread(target=self._serve, args=(go,), name=f"step-{i}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
            self._done.acquire()  # the thread reported its ident: it is parked
            self.idents.append(self._outcome)

    def _serve(self, go):
        self._outcome = _thread.get_ident()
        self._done.release()
        while True:
            go.acquire()
            job = self._job
            if job is None:
                return
            try:
                self._outcome = (True, job[0](*job[1:]))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, re-raised there
                self._outcome = (False, exc)
            job = None  # a parked thread holds no reference to what the step used
            self._done.release()

    def __call__(self, index, fn, *args):
        if index == 0:
            return fn(*args)
        self._job = (fn, *args)
        self._go[index].release()
        self._done.acquire()
        ok, value = self._outcome
        self._job = self._outcome = None
        if not ok:
            raise value
        return value

    def close(self):
        """Let every thread finish, and wait until it has."""
        self._job = None
        for go, thread in zip(self._go[1:], self._threads):
            if thread.is_alive():
                go.release()
            thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
