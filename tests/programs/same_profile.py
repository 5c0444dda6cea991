"""What profilers see of a program's calls: cProfile, sys.setprofile and (3.12+) the CALL and
C_RETURN events of sys.monitoring, over code that calls builtin accessors (len, getattr...),
whose calls racewatch checks, other functions, and imports, which racewatch sees as
synchronization (semantic identity)."""

import sys

import profiled


class Box:
    x = 1


def helper(value):
    return value


def work(box, items, rounds=1000):
    total = 0
    for _ in range(rounds):
        import profiled as again  # imported already: no call at all, under python
        total += again is profiled
        total += len(items) + getattr(box, "x") + max(1, 2) + helper(1) + sorted(items)[0]
        setattr(box, "y", total)
        total += hasattr(box, "y") + abs(-1)
    return total


profiled.print_cprofile(work, Box(), [3, 1, 2])
profiled.print_setprofile(work, Box(), [1], 10)

if hasattr(sys, "monitoring"):
    monitoring = sys.monitoring
    seen = {}

    def on_call(code, offset, callable, arg0):
        name = getattr(callable, "__qualname__", type(callable).__qualname__)
        seen["CALL", name] = seen.get(("CALL", name), 0) + 1

    def on_c_return(code, offset, callable, arg0):
        name = getattr(callable, "__qualname__", type(callable).__qualname__)
        seen["C_RETURN", name] = seen.get(("C_RETURN", name), 0) + 1

    monitoring.use_tool_id(monitoring.PROFILER_ID, "same_profile")
    monitoring.register_callback(monitoring.PROFILER_ID, monitoring.events.CALL, on_call)
    monitoring.register_callback(monitoring.PROFILER_ID, monitoring.events.C_RETURN,
                                 on_c_return)
    events = monitoring.events
    monitoring.set_local_events(monitoring.PROFILER_ID, work.__code__,
                                events.CALL | events.C_RETURN | events.C_RAISE)
    work(Box(), [1], rounds=10)
    monitoring.set_local_events(monitoring.PROFILER_ID, work.__code__, 0)
    monitoring.free_tool_id(monitoring.PROFILER_ID)
    for key in sorted(seen):
        print("monitoring", *key, seen[key])
