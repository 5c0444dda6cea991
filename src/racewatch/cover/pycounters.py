"""Coverage counters in pure Python, the twin of _counters.c: same functions, still exact."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import _thread
import sys

# Counters of every thread that counted, by thread ident: a thread only ever adds to its own
# list, so `atomic` needs no lock and loses nothing, whatever the interpreter switches.
_tables = {}
# `set` and `count` share one list: storing 1 is idempotent, and `count` is the plain
# increment Go's `count` mode is (exact while the GIL serializes the read-modify-write).
_shared = []
_capacity = 0


def hit_set(site, _shared=_shared):
    try:
        _shared[site] = 1
    except (IndexError, TypeError):
        pass  # an id no module registered: a probe never raises into the code it measures


def hit_count(site, _shared=_shared):
    try:
        _shared[site] += 1
    except (IndexError, TypeError):
        pass


def hit_atomic(site, _get_ident=_thread.get_ident, _tables=_tables):
    try:
        _tables[_get_ident()][site] += 1
    except (KeyError, IndexError):
        _first_hit(site)
    except TypeError:
        pass


def _first_hit(site):
    """A thread's first count, or one past the end of its list: make room, then count."""
    table = _tables.setdefault(_thread.get_ident(), [])
    if len(table) < _capacity:
        table.extend([0] * (_capacity - len(table)))
    if 0 <= site < len(table):
        table[site] += 1


def reserve(wanted):
    """Make site ids below `wanted` countable; returns the capacity."""
    global _capacity
    if wanted > _capacity:
        _shared.extend([0] * (wanted - _capacity))
        _capacity = wanted
    return _capacity


def counts(start, stop):
    """The counters of site ids in [start, stop), as a list of ints."""
    total = [0] * (stop - start)
    for table in [_shared, *list(_tables.values())]:
        part = table[start:stop]
        for i, n in enumerate(part):
            if n:
                total[i] += n
    return total


def snapshot(start, stop):
    """counts(start, stop) and the (code, lasti) of every frame of every thread: unlike the C
    twin's, not read in one go (other threads may run in between), so racewatch chains lines
    only with the C counters (rewriter/chains.py)."""
    from racewatch.cover import escapes
    places = [place for frame in sys._current_frames().values()
              for place in escapes.places_of(frame)]
    return counts(start, stop), places


def reset():
    """Zero every counter: a fork child counts only what it runs itself."""
    _tables.clear()
    _shared[:] = [0] * len(_shared)


_enabled = [True]  # a list: read by the tokens' bound default, switched by enable()


class HitToken:
    """A line probe's constant: `~token` counts a run of its line, as _counters.c's does."""

    __slots__ = ("site", "hit")

    def __init__(self, site, hit):
        self.site = site
        self.hit = hit

    def __invert__(self, _enabled=_enabled):
        if _enabled[0]:
            self.hit(self.site)

    def __reduce__(self):
        from racewatch.runtime import null
        return null.Token, ()  # a site id means nothing in another process

    def __repr__(self):
        return f"<racewatch line probe {self.site}>"


def hit_token(site, mode):
    return HitToken(site, {"set": hit_set, "count": hit_count, "atomic": hit_atomic}[mode])


def enable(flag):
    """Hit tokens count (True) or do nothing (False: racewatch stopped)."""
    _enabled[0] = bool(flag)
