"""A new thread's first event comes before racewatch's bootstrap hook: code that runs in the
thread before Thread._bootstrap_inner (as a finalizer run by a collection that threading's own
first allocations there started), here a subclass's override. It reads what its creator wrote
before start(): no race."""

import threading

config = None


class Early(threading.Thread):
    def _bootstrap_inner(self):
        print("early read", config["mode"])   # after the creator's write: start() orders them
        super()._bootstrap_inner()


def main():
    global config
    config = {"mode": "fast"}
    thread = Early(target=lambda: print("run"))
    thread.start()
    thread.join()


main()
