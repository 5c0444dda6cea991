"""multiprocessing with one start method: a Pool maps 10 tasks of 1,000, then a Process runs
one of 500; the summed line must count 10,500 over every process.

usage: cover_pools.py fork|spawn|forkserver
"""

import multiprocessing
import sys


def work(n):
    total = 0
    for i in range(n):
        total += i  # the counted line
    return total


if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Pool(3) as pool:  # leaving the block terminates the workers (SIGTERM)
        results = pool.map(work, [1000] * 10)
    process = ctx.Process(target=work, args=(500,))
    process.start()
    process.join()
    print(sum(results), process.exitcode)
