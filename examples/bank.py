"""A small bank: the teller deposits under the account's lock, but the fee job forgot it.

`racewatch run examples/bank.py` reports the race between `fee` (no lock) and `deposit`
(holding the lock), with both stacks, and exits 66.
"""

import threading


class Account:
    def __init__(self, owner):
        self.owner = owner
        self.balance = 0
        self.lock = threading.Lock()

    def deposit(self, amount):
        with self.lock:
            self.balance += amount

    def charge_fee(self, amount):
        self.balance -= amount  # the bug: a read-modify-write without the lock


def teller(account, deposits):
    for _ in range(deposits):
        account.deposit(10)


def fee_job(account, months):
    for _ in range(months):
        account.charge_fee(1)


def main():
    account = Account("ada")
    workers = [threading.Thread(target=teller, args=(account, 20), name="teller"),
               threading.Thread(target=fee_job, args=(account, 12), name="fees")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(f"{account.owner}: balance {account.balance}")


if __name__ == "__main__":
    main()
