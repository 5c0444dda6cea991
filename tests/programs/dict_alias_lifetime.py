"""An instance whose __dict__ was read (its keys are then its attributes to racewatch): its
`__weakref__`, weakref count and death are what plain Python shows."""

import weakref


class Token:
    pass


def instance_dict_weakref():
    # obj.__dict__ makes the dict's keys obj's attributes: racewatch follows obj's life without
    # a weakref, which obj.__weakref__ would show (boltons' wrap_trace wraps it as a method)
    box = Token()
    box.value = 1
    seen = box.__dict__
    seen["value"] += getattr(box, "__dict__")["value"]
    print("instance __weakref__ after __dict__:", box.__weakref__, weakref.getweakrefcount(box))
    died = []
    watch = weakref.ref(box, lambda ref: died.append(1))
    del box
    print("an instance whose __dict__ was read dies at once:", died == [1], watch() is None,
          seen)


def replaced_dict_outlives_its_instance():
    # the old dict of a replaced __dict__ stops standing for the instance: an entry left behind
    # was read after the instance died (valgrind: an invalid read in alias_target)
    box = Token()
    box.value = 1
    first = box.__dict__
    box.__dict__ = {"value": 2}
    second = box.__dict__
    second["value"] += 1
    del box
    for i in range(20):
        first[f"k{i}"] = i
    print("a replaced __dict__ outlives its instance:", len(first), second)


instance_dict_weakref()
replaced_dict_outlives_its_instance()
