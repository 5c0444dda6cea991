"""Line probes: a counter call on every path where sys.settrace would report a "line" event."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
from bytecode import Instr, Label, TryBegin, TryEnd

from racewatch.rewriter import opcodes

# An edge into an instruction: fallthrough (or a landing fixed relative to a label, like an
# exhausted FOR_ITER's), a jump through a label, or an exception through a handler label.
_LINEAR, _JUMP, _RAISE = range(3)


def insert(items, probe):
    """`items` (a `bytecode` instruction list) with line probes; `probe(instr)` builds the
    call for the line of `instr`.

    A probe goes where the interpreter would fire the event. When only some of the paths into
    an instruction fire it (a jump from the same line, an exception raised on the handler's own
    line), the probe sits on the firing paths only: firing jumps and handlers are retargeted to
    a label before the probe, the others to a label after it.
    """
    flow = _Flow(items)
    plans = {}
    for k, instr in enumerate(flow.instrs):
        plan = flow.plan(k)
        if plan is not None:
            plans[id(instr)] = plan
    if not plans:
        return items
    return flow.emit(plans, probe)


class _Plan:
    """Where the probe for one instruction goes, and who enters before or after it."""

    def __init__(self, linear_fires, jumps, regions):
        self.linear_fires = linear_fires  # None when nothing falls into the instruction
        self.jumps = jumps  # [(jump instr, fires)]
        self.regions = regions  # {TryBegin: fires, or None for "per raiser"}
        self.used = {}  # fires -> the label before (True) or after (False) the probe

    def label(self, fires):
        """The label for entries that fire (before the probe) or not (after it)."""
        return self.used.setdefault(fires, Label())

    def labels(self, fires):
        """The label as an item list, empty when nothing enters there."""
        return [self.used[fires]] if fires in self.used else []


class _Flow:
    """The control flow of one code object's instructions, as the interpreter's tracing sees it."""

    def __init__(self, items):
        self.items = items
        self.instrs = [item for item in items if isinstance(item, Instr)]
        self.index = {id(instr): k for k, instr in enumerate(self.instrs)}
        self.lines = [_line(instr) for instr in self.instrs]
        self.region = []  # the TryBegin active at each instruction, or None
        self.at_label = {}  # id(Label) -> index of the instruction it precedes
        pending, active = [], None
        for item in items:
            if isinstance(item, Label):
                pending.append(item)
            elif isinstance(item, TryBegin):
                active = item
            elif isinstance(item, TryEnd):
                active = None
            elif isinstance(item, Instr):
                for label in pending:
                    self.at_label[id(label)] = len(self.region)
                pending = []
                self.region.append(active)
        self.first = next((k for k, i in enumerate(self.instrs) if opcodes.starts_tracing(i)),
                          0)
        self.live = self._reachable()
        self.marked = self._marks() if opcodes.LINE_EVENTS_NEED_MARK else None
        self._incoming()

    def landing(self, jump):
        """The instruction a taken jump executes next."""
        return self.at_label[id(jump.arg)] + opcodes.JUMP_LANDING_SKIP.get(jump.name, 0)

    def falls_through(self, k):
        instr = self.instrs[k]
        return not (instr.is_final() or instr.is_uncond_jump())

    def _reachable(self):
        live = [False] * len(self.instrs)
        work = [0]
        handlers = set()
        while work:
            k = work.pop()
            if k >= len(live) or live[k]:
                continue
            live[k] = True
            instr = self.instrs[k]
            if self.falls_through(k):
                work.append(k + 1)
            if instr.has_jump():
                work.append(self.landing(instr))
            region = self.region[k]
            if region is not None and id(region) not in handlers:
                handlers.add(id(region))
                work.append(self.at_label[id(region.target)])
        return live

    def _marks(self):
        """PYVERSIONS: 3.12+ only fire a line event on "marked" instructions: the first of each
        line in code order, jump landings and exception handlers (CPython's initialize_lines)."""
        marked = [False] * len(self.instrs)
        current = -1
        for k in range(self.first, len(self.instrs)):
            if self.instrs[k].name in opcodes.NEVER_STARTS_LINE:
                continue
            line = -1 if self.lines[k] is None else self.lines[k]
            marked[k] = line >= 0 and line != current
            current = line
        for k, instr in enumerate(self.instrs):
            if instr.has_jump():
                target = self.landing(instr)
                if target < len(marked) and self.lines[target] is not None:
                    marked[target] = True
            region = self.region[k]
            if region is not None:
                target = self.at_label[id(region.target)]
                if (self.lines[target] is not None
                        and self.instrs[target].name not in opcodes.NOT_MARKED_AS_HANDLER):
                    marked[target] = True
        return marked

    def fires(self, p, c, kind):
        """Whether the interpreter reports a line event at instruction `c` entered from `p`."""
        line = self.lines[c]
        target = self.instrs[c]
        if line is None or c < self.first or target.name in opcodes.NEVER_FIRES_LINE:
            return False
        source = self.instrs[p]
        if opcodes.LINE_EVENTS_NEED_MARK:
            if not self.marked[c]:
                return False
            if line != self.lines[p] or source.name == "RESUME":
                return True
            return kind == _JUMP and c < p and source.name in opcodes.BACKWARD_SAME_LINE_FIRES
        # PYVERSIONS: 3.11 fires on entry, on a changed line, and on any backward edge that
        # does not land on SEND (ceval.c maybe_call_line_trace).
        if source.name == "RESUME" and source.arg == 0:
            return True
        if line != self.lines[p]:
            return True
        return c < p and target.name != "SEND"

    def _incoming(self):
        """Every live edge, by target: linear edges, jumps, exception regions."""
        n = len(self.instrs)
        self.linear = [[] for _ in range(n)]
        self.jumps = [[] for _ in range(n)]
        self.raisers = {}  # id(TryBegin) -> (TryBegin, [raiser indexes])
        for k, instr in enumerate(self.instrs):
            if not self.live[k]:
                continue
            if k + 1 < n and self.falls_through(k):
                self.linear[k + 1].append(k)
            if instr.has_jump():
                target = self.landing(instr)
                if target < n:
                    fixed = opcodes.JUMP_LANDING_SKIP.get(instr.name, 0)
                    # a landing past the label cannot be retargeted: it follows the code
                    (self.linear if fixed else self.jumps)[target].append(k)
            region = self.region[k]
            if region is not None:
                self.raisers.setdefault(id(region), (region, []))[1].append(k)
        self.handlers = [[] for _ in range(n)]
        for region, raisers in self.raisers.values():
            self.handlers[self.at_label[id(region.target)]].append((region, raisers))

    def plan(self, c):
        if not self.live[c] or self.lines[c] is None:
            return None
        linear = {self.fires(p, c, _LINEAR) for p in self.linear[c]}
        jumps = [(self.instrs[p], self.fires(p, c, _JUMP)) for p in self.jumps[c]]
        regions = {}
        for region, raisers in self.handlers[c]:
            outcomes = {self.fires(p, c, _RAISE) for p in raisers}
            regions[region] = outcomes.pop() if len(outcomes) == 1 else None
        if not (True in linear or any(fire for _, fire in jumps) or any(
                fire is not False for fire in regions.values())):
            return None
        # Linear edges share one position; should they disagree (never seen), count them.
        linear_fires = (True in linear) if linear else None
        return _Plan(linear_fires, jumps, regions)

    def emit(self, plans, probe):
        """The new instruction list: probes placed, jumps and handlers retargeted."""
        for plan in plans.values():
            for jump, fire in plan.jumps:
                jump.arg = plan.label(fire)
            for region, fire in plan.regions.items():
                if fire is not None:
                    region.target = plan.label(fire)
        split = {id(region): plan for plan in plans.values()
                 for region, fire in plan.regions.items() if fire is None}
        for plan in split.values():  # both entries exist before the handler is placed
            plan.label(True)
            plan.label(False)
        out = []
        pending = []  # labels and region markers since the last instruction
        open_region = None  # a region being split by raiser as it is copied
        current = None  # the TryBegin of the part of `open_region` being copied
        for item in self.items:
            if isinstance(item, TryBegin) and id(item) in split:
                open_region, current = item, None
            elif isinstance(item, TryEnd) and item.entry is open_region:
                if current is not None:
                    pending.append(TryEnd(current))
                open_region = current = None
            elif not isinstance(item, Instr):
                pending.append(item)
            else:
                if open_region is not None:
                    current = self._switch(pending, open_region, current, item,
                                           split[id(open_region)])
                self._place(out, pending, item, plans.get(id(item)), probe)
                pending = []
        out.extend(pending)
        return out

    def _switch(self, pending, region, current, instr, plan):
        """Keep a raiser of a split region in the part whose handler entry fits it."""
        handler = self.at_label[id(region.target)]
        target = plan.label(self.fires(self.index[id(instr)], handler, _RAISE))
        if current is not None and current.target is target:
            return current
        if current is not None:
            pending.append(TryEnd(current))
        current = TryBegin(target, region.push_lasti, region.stack_depth)
        pending.append(current)
        return current

    def _place(self, out, pending, instr, plan, probe):
        """`instr` after the markers before it, with its probe and labels if it has a plan.

        Jumps must land before a region's TryBegin (as `bytecode` lays them out, so that its
        stack analysis sees the region), so the markers are reordered: region ends, labels,
        the probe and its labels, region starts, the instruction.
        """
        if plan is None:
            out.extend(pending)
            out.append(instr)
            return
        k = self.index[id(instr)]
        if k and self.instrs[k - 1].name in opcodes.NO_INSERT_AFTER:
            raise ValueError(f"a line starts right after {self.instrs[k - 1].name}")
        starts = [item for item in pending if isinstance(item, TryBegin)]
        out.extend(item for item in pending if not isinstance(item, TryBegin))
        calls = probe(instr)
        if instr.name in opcodes.PROBE_AFTER and all(plan.regions.values()):
            # Entered only by exceptions, all of which fire: count after it, inside the
            # cleanup region that expects the stack it leaves (when only some fire, the
            # probe must go before it, on the firing entry).
            out.extend([*plan.labels(True), *plan.labels(False), *starts, instr, *calls])
            return
        if plan.linear_fires is False:
            out.append(Instr("JUMP_FORWARD", plan.label(False), location=instr.location))
        out.extend([*plan.labels(True), *calls, *plan.labels(False), *starts, instr])


def _line(instr):
    location = instr.location
    return None if location is None else location.lineno
