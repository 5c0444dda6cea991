"""Hand control from one thread to another through a pipe: an ordering racewatch does not see."""

import os


class Turn:
    """A one-way signal: `give()` in one thread lets a `take()` in another return."""

    def __init__(self):
        self._read, self._write = os.pipe()

    def give(self):
        os.write(self._write, b".")

    def take(self):
        os.read(self._read, 1)
