"""Where `super().name` reads from: the class attribute the lookup finds, for both runtimes."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py

def owner(obj, key):
    """The class whose attribute `super().key` reads, or None.

    `obj` is a `super` object (3.11 probes) or the (class, self) pair the 3.12+ probe passes.
    """
    if type(obj) is super:
        start, instance = obj.__thisclass__, obj.__self_class__
    elif type(obj) is tuple and len(obj) == 2:
        start, instance = obj
        instance = instance if isinstance(instance, type) else type(instance)
    else:
        return None
    if instance is None:
        return None
    mro = instance.__mro__
    try:
        after = mro[mro.index(start) + 1:]
    except ValueError:
        return None
    for klass in after:
        if key in klass.__dict__:
            return klass
    return None
