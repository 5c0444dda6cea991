"""Four worker threads fed through a queue, updating shared objects under locks (race-free)."""

import queue
import sys
import threading

ITEMS = 70_000
WORKERS = 4
ROUNDS_PER_ITEM = 40


class Item:
    """A unit of work: written by the producer before `put`, by one worker after `get`."""

    def __init__(self, seed):
        self.seed = seed
        self.result = None
        self.worker = None


class Totals:
    """Shared by every worker; `with self.lock:` guards all of its attributes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = 0
        self.sum = 0
        self.largest = 0


class Histogram:
    """Shared buckets guarded by explicit acquire/release, the other spelling of a lock."""

    def __init__(self, size):
        self.lock = threading.Lock()
        self.buckets = [0] * size
        self.by_worker = {}


def crunch(seed):
    """A little arithmetic per item, so the threads spend time outside the locks too."""
    x = seed
    for _ in range(ROUNDS_PER_ITEM):
        x = (x * 1103515245 + 12345) % 2147483648
    return x


def worker(name, inbox, outbox, totals, histogram):
    while True:
        item = inbox.get()
        if item is None:
            break
        item.result = crunch(item.seed)
        item.worker = name
        with totals.lock:
            totals.items += 1
            totals.sum += item.result
            if item.result > totals.largest:
                totals.largest = item.result
        histogram.lock.acquire()
        try:
            histogram.buckets[item.result % len(histogram.buckets)] += 1
            histogram.by_worker[name] = histogram.by_worker.get(name, 0) + 1
        finally:
            histogram.lock.release()
        outbox.put(item)


def main(scale=1.0):
    count = max(WORKERS, int(ITEMS * scale))
    inbox, outbox = queue.Queue(maxsize=64), queue.Queue()
    totals, histogram = Totals(), Histogram(17)
    threads = [threading.Thread(target=worker, name=f"worker-{i}",
                                args=(f"worker-{i}", inbox, outbox, totals, histogram))
               for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for seed in range(count):
        inbox.put(Item(seed))
    for _ in threads:
        inbox.put(None)
    # Results come back in any order; everything checked below is order-independent.
    finished = [outbox.get() for _ in range(count)]
    for thread in threads:
        thread.join()
    if totals.items != count or sum(histogram.by_worker.values()) != count:
        raise SystemExit("threaded: lost updates")
    check = sum(item.result for item in finished)
    if check != totals.sum:
        raise SystemExit("threaded: sums differ")
    print(f"checksum {totals.items} {totals.sum} {totals.largest} {histogram.buckets}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
