"""The worker writes under a lock, the main thread without it: the report names the mutex."""

import threading

from turns import Turn


class Account:
    def __init__(self):
        self.balance = 0


def worker(account, lock, ready, finish):
    with lock:
        account.balance = 100
    ready.give()
    finish.take()


def main():
    account, lock, ready, finish = Account(), threading.Lock(), Turn(), Turn()
    thread = threading.Thread(target=worker, args=(account, lock, ready, finish),
                              name="depositor")
    thread.start()
    ready.take()
    account.balance -= 10
    finish.give()
    thread.join()


main()
