"""Shadow state never changes an object's life, and racewatch's deallocator hooks keep
CPython's own behaviour: each program prints what plain Python prints, under racewatch."""

import sysconfig

import pytest

from tests.helpers import PROGRAMS, RUNTIME, clean_env, python_args, racewatch_args, run


def plain(program):
    proc = run(python_args(program), cwd=PROGRAMS)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_shadow_state_never_keeps_objects_alive_nor_shows():
    # an exception's __weakref__ and weakref count; tuple keys deleted from a dict (and a
    # key's refcount); a SimpleNamespace's contents; futures as_completed yielded
    watched = run(racewatch_args("lifetimes.py"), cwd=PROGRAMS)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == plain("lifetimes.py")


@pytest.mark.xfail(bool(sysconfig.get_config_var("Py_GIL_DISABLED")), strict=True,
                   reason="without the GIL racewatch follows such an instance with a weakref, "
                          "which __weakref__ shows (README: Limitations)")
def test_an_instance_whose_dict_was_read_shows_no_weakref():
    # obj.__dict__[k] is obj.k: racewatch maps the dict back to its instance, by a weakref
    # before (boltons' wrap_trace took obj.__weakref__ for a method and failed)
    watched = run(racewatch_args("dict_alias_lifetime.py"), cwd=PROGRAMS)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == plain("dict_alias_lifetime.py")


@pytest.mark.parametrize("how", ["racewatch run", "PYTHONRACE"])
def test_deeply_nested_containers_are_freed_as_plain_python_frees_them(how):
    # CPython's trashcan defers deep deallocation chains; wrapping list/dict/set deallocators
    # defeated it (a segfault a few hundred thousand levels down, or 50,000 in a thread with
    # a 1 MiB stack), whether or not the code was instrumented
    if how == "racewatch run":
        proc = run(racewatch_args("deep_nesting.py"), cwd=PROGRAMS)
    else:
        proc = run(python_args("deep_nesting.py"), cwd=PROGRAMS,
                   env=clean_env(PYTHONRACE=f"runtime={RUNTIME}"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == plain("deep_nesting.py") == "freed\n"
