"""An uncaught exception from a failing attribute access, two frames deep, with a cause."""


class Config:
    def __init__(self):
        self.values = {"a": 1}


def lookup(config):
    try:
        return config.values["b"]
    except KeyError as exc:
        raise LookupError("no b") from exc


def main():
    print("starting")
    lookup(Config()).missing


main()
