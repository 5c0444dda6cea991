"""`racewatch.start()` / `stop()` / `races()`: the detector driven from Python code."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys


class Detector:
    """What start() returns: `stop()` it, or use it as a context manager."""

    def __init__(self, session, owned):
        self.session = session
        self.owned = owned  # False: racewatch was already running; stop() leaves it be

    def stop(self):
        if self.owned:
            self.session.stop()

    def races(self):
        return races()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(**options):
    """Start detecting races in this process; returns a Detector (also a context manager).

    Options are those of the options table (`exitcode=3`, `include=["app"]`, ...), over
    `[tool.racewatch]` and PYTHONRACE. Modules imported from now on are instrumented; code
    imported before is not. If racewatch is already running here (-X race, PYTHONRACE,
    pytest --race, racewatch run), that session is returned and options must be empty.
    """
    from racewatch import config, session

    values = {name: config.native_value(name, value, "racewatch.start()")
              for name, value in options.items()}
    running = session.current
    if running is not None and running.active:
        if values:
            raise config.ConfigError("racewatch is already running in this process; "
                                     "start() cannot change its options")
        return Detector(running, owned=False)
    if running is not None:  # stopped earlier by stop(): same runtime state, detect again
        if values:
            raise config.ConfigError("start() after stop() resumes with the first options")
        running.resume()
        return Detector(running, owned=True)
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    started = session.Session(config.resolve(os.getcwd(), values),
                              session.default_roots(main if isinstance(main, str) else None))
    return Detector(started, owned=True)


def stop():
    """Stop detecting (reports found so far stay readable through races())."""
    from racewatch import session
    if session.current is not None:
        session.current.stop()


def races():
    """Every report of this process so far, as dicts in the shape of the JSON format: races
    (`"type": "race"`: location, access and previous access with their threads and stacks,
    threads, mutexes) and lock-order inversions (`"type": "lock-order-inversion"`: cycle)."""
    from racewatch import session
    running = session.current
    if running is None or running.reporter is None:  # not running, or coverage only
        return []
    from racewatch.runtime import report
    running.reporter.decide()
    strip = running.options.strip_path_prefix
    return [report.record_dict(record, strip) for record in running.reporter.records]
