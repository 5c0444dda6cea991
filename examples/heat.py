"""Primes counted by four threads: a small program with hot, warm, cold and dead lines.

    racewatch run --cover=atomic --no-race examples/heat.py && racewatch cover html

draws its heat map: the inner loop of `is_prime` runs ~150,000 times, the test for even
numbers as often as `is_prime` is called, and `report_error` never (red).
"""

import threading


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


def report_error(message):
    raise RuntimeError(message)  # never reached: the dead line of the map


def count_primes(start, stop, results, index):
    found = 0
    for n in range(start, stop):
        if is_prime(n):
            found += 1
    results[index] = found


def main():
    results = [0] * 4
    chunk = 5_000
    workers = [threading.Thread(target=count_primes, args=(i * chunk, (i + 1) * chunk, results, i))
               for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = sum(results)
    if total != 2262:
        report_error(f"expected 2262 primes below 20000, found {total}")
    print(f"{total} primes below {4 * chunk}")


if __name__ == "__main__":
    main()
