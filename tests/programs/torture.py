"""Torture program: prints deterministic results, then dies of an uncaught attribute error.

usage: torture.py [--trace] [--instrumented=PATH]
  --trace               also record sys.settrace events of the torture files and print them
  --instrumented=PATH   write which code objects racewatch instrumented to PATH (JSON)
"""

import json
import sys

import torture_lib
from torture_lib import Box, section


class Account:
    """Lives in __main__, so the script's own code is exercised too."""

    fee = 1

    def __init__(self, owner, balance):
        self.owner = owner
        self._balance = balance
        self.history = []

    @property
    def balance(self):
        return self._balance

    @balance.setter
    def balance(self, value):
        self.history.append(value - self._balance)
        self._balance = value

    def statement(self):
        for entry in self.history:
            yield f"{self.owner}: {entry:+d}"


class Savings(Account):
    fee = 0

    def __init__(self, owner, balance, rate):
        super().__init__(owner, balance)
        self.rate = rate

    @property
    def balance(self):
        return super().balance + self.rate

    @balance.setter
    def balance(self, value):
        Account.balance.fset(self, value)


@section
def main_module():
    acct = Savings("ann", 10, 2)
    for amount in (5, -3):
        acct.balance += amount - acct.fee
    yield acct.balance, list(acct.statement()), Account.fee, Savings.fee
    match acct:
        case Savings(owner="ann", rate=r):
            yield f"savings at {r}"


class Ledger:
    def __init__(self):
        self.book = Box({"ann": 1})

    @property
    def total(self):
        return sum(self.book.values.values())  # `values` is the Box's attribute, a dict


def audit(ledger):
    return check(ledger.book)


def check(book):
    return f"{book.value['ann']} entries, last {book.history.last}"


def main(argv):
    if any(arg.startswith("--instrumented=") for arg in argv):
        path = next(arg for arg in argv if arg.startswith("--instrumented="))[15:]
        import codecheck
        with open(path, "w") as f:
            json.dump({name: codecheck.report(sys.modules[name])
                       for name in ("__main__", "torture_lib")}, f)
    tracer = torture_lib.Tracer([__file__, torture_lib.__file__]) if "--trace" in argv else None
    if tracer:
        tracer.start()
    try:
        torture_lib.run_all()
        ledger = Ledger()
        try:
            ledger.total
        except AttributeError:
            audit(ledger)  # fails again, while handling: both tracebacks are printed
    finally:
        if tracer:
            tracer.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
