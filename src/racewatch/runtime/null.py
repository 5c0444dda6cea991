"""Probes that do nothing: bound once racewatch stops, so instrumented code keeps running."""

from racewatch import runtime


def _nothing(*args):
    return None


def sync(obj, site):
    return obj  # `with sync(lock):` must still hold the real lock


def _table():
    """Every hot-path name probes load, each doing nothing (sync hands back its object)."""
    return {name: sync if name == "sync" else _nothing for name in runtime.API_FUNCTIONS}


def install():
    """Bind the do-nothing probes; `runtime.active` becomes None (annotations stop too)."""
    import builtins
    for name, function in _table().items():
        setattr(builtins, runtime.api_name(name), function)
    runtime.active = None
