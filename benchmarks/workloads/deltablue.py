"""A DeltaBlue-style incremental constraint solver: many short-lived objects and lists."""

import sys

SIZE = 10_000
ROUNDS = 2
# Strengths, strongest first; a larger number is weaker.
REQUIRED, STRONG_PREFERRED, PREFERRED, STRONG_DEFAULT, NORMAL, WEAK_DEFAULT, WEAKEST = range(7)
NONE, FORWARD, BACKWARD = 0, 1, -1


class Variable:
    def __init__(self, name, value=0):
        self.name = name
        self.value = value
        self.constraints = []
        self.determined_by = None
        self.walk_strength = WEAKEST
        self.stay = True
        self.mark = 0

    def remove_constraint(self, constraint):
        self.constraints.remove(constraint)
        if self.determined_by is constraint:
            self.determined_by = None


class Constraint:
    """A relation the planner keeps satisfied as long as nothing stronger overrides it."""

    def __init__(self, planner, strength):
        self.planner = planner
        self.strength = strength

    def attach(self):
        self.add_to_graph()
        self.planner.incremental_add(self)

    def satisfy(self, mark):
        """Satisfy this constraint if it can; returns the constraint it overrode, if any."""
        self.choose_method(mark)
        if not self.is_satisfied():
            if self.strength == REQUIRED:
                raise RuntimeError("could not satisfy a required constraint")
            return None
        self.mark_inputs(mark)
        out = self.output()
        overridden = out.determined_by
        if overridden is not None:
            overridden.mark_unsatisfied()
        out.determined_by = self
        if not self.planner.add_propagate(self, mark):
            raise RuntimeError("cycle encountered")
        out.mark = mark
        return overridden

    def detach(self):
        if self.is_satisfied():
            self.planner.incremental_remove(self)
        else:
            self.remove_from_graph()

    def is_input(self):
        return False


class UnaryConstraint(Constraint):
    def __init__(self, planner, var, strength):
        super().__init__(planner, strength)
        self.var = var
        self.satisfied = False
        self.attach()

    def add_to_graph(self):
        self.var.constraints.append(self)
        self.satisfied = False

    def remove_from_graph(self):
        self.var.remove_constraint(self)
        self.satisfied = False

    def choose_method(self, mark):
        self.satisfied = self.var.mark != mark and self.strength < self.var.walk_strength

    def is_satisfied(self):
        return self.satisfied

    def mark_inputs(self, mark):
        pass

    def mark_unsatisfied(self):
        self.satisfied = False

    def output(self):
        return self.var

    def inputs_known(self, mark):
        return True

    def recalculate(self):
        self.var.walk_strength = self.strength
        self.var.stay = not self.is_input()
        if self.var.stay:
            self.execute()

    def execute(self):
        pass


class StayConstraint(UnaryConstraint):
    """Keep a variable's value as it is."""


class EditConstraint(UnaryConstraint):
    """A variable the user is about to change: an input of plans."""

    def is_input(self):
        return True


class BinaryConstraint(Constraint):
    def __init__(self, planner, v1, v2, strength):
        super().__init__(planner, strength)
        self.v1 = v1
        self.v2 = v2
        self.direction = NONE
        self.attach()

    def add_to_graph(self):
        self.v1.constraints.append(self)
        self.v2.constraints.append(self)
        self.direction = NONE

    def remove_from_graph(self):
        self.v1.remove_constraint(self)
        self.v2.remove_constraint(self)
        self.direction = NONE

    def choose_method(self, mark):
        """Write into whichever side is unmarked and weaker than this constraint, if any."""
        v1, v2 = self.v1, self.v2
        if v1.mark == mark:
            ok = v2.mark != mark and self.strength < v2.walk_strength
            self.direction = FORWARD if ok else NONE
        elif v2.mark == mark:
            ok = self.strength < v1.walk_strength
            self.direction = BACKWARD if ok else NONE
        elif v1.walk_strength > v2.walk_strength:
            self.direction = BACKWARD if self.strength < v1.walk_strength else NONE
        else:
            self.direction = FORWARD if self.strength < v2.walk_strength else BACKWARD

    def is_satisfied(self):
        return self.direction != NONE

    def mark_inputs(self, mark):
        self.input().mark = mark

    def mark_unsatisfied(self):
        self.direction = NONE

    def input(self):
        return self.v1 if self.direction == FORWARD else self.v2

    def output(self):
        return self.v2 if self.direction == FORWARD else self.v1

    def inputs_known(self, mark):
        source = self.input()
        return source.mark == mark or source.stay or source.determined_by is None

    def recalculate(self):
        source, out = self.input(), self.output()
        out.walk_strength = max(self.strength, source.walk_strength)
        out.stay = source.stay
        if out.stay:
            self.execute()


class EqualityConstraint(BinaryConstraint):
    def execute(self):
        self.output().value = self.input().value


class ScaleConstraint(BinaryConstraint):
    """dest = src * scale + offset, solvable in either direction."""

    def __init__(self, planner, src, scale, offset, dest, strength):
        self.scale = scale
        self.offset = offset
        super().__init__(planner, src, dest, strength)

    def add_to_graph(self):
        super().add_to_graph()
        self.scale.constraints.append(self)
        self.offset.constraints.append(self)

    def remove_from_graph(self):
        super().remove_from_graph()
        self.scale.remove_constraint(self)
        self.offset.remove_constraint(self)

    def mark_inputs(self, mark):
        super().mark_inputs(mark)
        self.scale.mark = self.offset.mark = mark

    def execute(self):
        if self.direction == FORWARD:
            self.v2.value = self.v1.value * self.scale.value + self.offset.value
        else:
            self.v1.value = (self.v2.value - self.offset.value) // self.scale.value

    def recalculate(self):
        source, out = self.input(), self.output()
        out.walk_strength = max(self.strength, source.walk_strength)
        out.stay = source.stay and self.scale.stay and self.offset.stay
        if out.stay:
            self.execute()


class Planner:
    """Adds and removes constraints incrementally, and extracts plans to re-run cheaply."""

    def __init__(self):
        self.current_mark = 0

    def new_mark(self):
        self.current_mark += 1
        return self.current_mark

    def incremental_add(self, constraint):
        mark = self.new_mark()
        overridden = constraint.satisfy(mark)
        while overridden is not None:
            overridden = overridden.satisfy(mark)

    def incremental_remove(self, constraint):
        out = constraint.output()
        constraint.mark_unsatisfied()
        constraint.remove_from_graph()
        unsatisfied = self.remove_propagate_from(out)
        for strength in range(REQUIRED, WEAKEST):
            for other in unsatisfied:
                if other.strength == strength:
                    self.incremental_add(other)

    def add_propagate(self, constraint, mark):
        """Recompute walk strengths downstream of `constraint`; False on a cycle."""
        todo = [constraint]
        while todo:
            current = todo.pop(0)
            if current.output().mark == mark:
                self.incremental_remove(constraint)
                return False
            current.recalculate()
            self.add_consumers(current.output(), todo)
        return True

    def remove_propagate_from(self, out):
        """Forget what `out` was determined by; returns the constraints left unsatisfied."""
        out.determined_by = None
        out.walk_strength = WEAKEST
        out.stay = True
        unsatisfied = []
        todo = [out]
        while todo:
            var = todo.pop(0)
            for constraint in var.constraints:
                if not constraint.is_satisfied():
                    unsatisfied.append(constraint)
            determining = var.determined_by
            for constraint in var.constraints:
                if constraint is not determining and constraint.is_satisfied():
                    constraint.recalculate()
                    todo.append(constraint.output())
        return unsatisfied

    def add_consumers(self, var, todo):
        determining = var.determined_by
        for constraint in var.constraints:
            if constraint is not determining and constraint.is_satisfied():
                todo.append(constraint)

    def plan_for(self, edits):
        """The constraints to execute, in order, after the edited variables change."""
        mark = self.new_mark()
        plan = []
        todo = [c for c in edits if c.is_input() and c.is_satisfied()]
        while todo:
            constraint = todo.pop(0)
            out = constraint.output()
            if out.mark != mark and constraint.inputs_known(mark):
                plan.append(constraint)
                out.mark = mark
                self.add_consumers(out, todo)
        return plan


def edit_plan(planner, var):
    """An edit constraint on `var` and the plan that propagates its changes."""
    edit = EditConstraint(planner, var, PREFERRED)
    return edit, planner.plan_for([edit])


def execute(plan):
    for constraint in plan:
        constraint.execute()


def set_value(planner, var, value):
    """Edit `var` to `value` through a temporary edit constraint and a plan."""
    edit, plan = edit_plan(planner, var)
    for _ in range(10):
        var.value = value
        execute(plan)
    edit.detach()


def chain_test(n):
    """A chain of equalities: editing the first variable must move the last."""
    planner = Planner()
    chain = [Variable(f"v{i}") for i in range(n + 1)]
    for a, b in zip(chain, chain[1:]):
        EqualityConstraint(planner, a, b, REQUIRED)
    first, last = chain[0], chain[-1]
    StayConstraint(planner, last, STRONG_DEFAULT)
    _, plan = edit_plan(planner, first)
    for i in range(100):
        first.value = i
        execute(plan)
        if last.value != i:
            raise SystemExit(f"deltablue: chain test failed at {i}: {last.value}")
    return planner.current_mark + last.value


def projection_test(n):
    """Pairs linked by dst = src * scale + offset, edited from either end."""
    planner = Planner()
    scale = Variable("scale", 10)
    offset = Variable("offset", 1000)
    dests = []
    for i in range(n):
        src = Variable(f"src{i}", i)
        dst = Variable(f"dst{i}", i)
        dests.append(dst)
        StayConstraint(planner, src, NORMAL)
        ScaleConstraint(planner, src, scale, offset, dst, REQUIRED)
    set_value(planner, src, 17)
    if dst.value != 1170:
        raise SystemExit("deltablue: projection test 1 failed")
    set_value(planner, dst, 1050)
    if src.value != 5:
        raise SystemExit("deltablue: projection test 2 failed")
    set_value(planner, scale, 5)
    if any(d.value != i * 5 + 1000 for i, d in enumerate(dests[:-1])):
        raise SystemExit("deltablue: projection test 3 failed")
    set_value(planner, offset, 2000)
    if any(d.value != i * 5 + 2000 for i, d in enumerate(dests[:-1])):
        raise SystemExit("deltablue: projection test 4 failed")
    return planner.current_mark + sum(d.value for d in dests)


def main(scale=1.0):
    n = max(10, int(SIZE * scale))
    total = 0
    for _ in range(ROUNDS):
        total += chain_test(n) + projection_test(n)
    print(f"checksum {total}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
