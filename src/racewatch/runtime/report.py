"""Race records, their text and JSON forms, where they go, and the exit status they imply."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import collections
import os
import sys

from racewatch import descendants
from racewatch.rewriter.sites import SITES
from racewatch.reports import stream as jsonl
from racewatch.reports import text as render
from racewatch.runtime import locations, owned, stacks, suppress, threads
from racewatch.runtime.parts import frames_text, strip_path, thread_origins  # noqa: F401
from racewatch.runtime.parts import mutex_names


class Sink:
    """Where reports go: stderr, stdout, or `PREFIX.<pid>` files (one per process).

    `preamble()`, if given, is written before the first report of each process (the JSON
    stream's header), so every file, and a forked child's output, starts with one."""

    def __init__(self, log_path, preamble=None):
        self.log_path = log_path
        self.preamble = preamble
        self._file = None
        self._pid = None

    def write(self, text):
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._file = None
            if self.preamble is not None:
                text = self.preamble() + text
        if self.log_path in ("stderr", "stdout"):
            out = sys.stderr if self.log_path == "stderr" else sys.stdout
            try:
                out.flush()
            except Exception:  # noqa: BLE001 - a broken stream must not stop a report
                out = None
            if out is None:
                os.write(2, text.encode(errors="replace"))
                return
            out.write(text)
            out.flush()
            return
        if self._file is None:
            self._file = open(f"{self.log_path}.{self._pid}", "a", encoding="utf-8")
        # One write per record, flushed: a process killed mid-run leaves complete lines
        # and at most one cut-off last line, which `racewatch report` skips.
        self._file.write(text)
        self._file.flush()


def _module_of(mapping):
    """The module whose globals dict `mapping` is, or None."""
    # type tests only, here and below: isinstance() could run a program's __getattribute__
    name = mapping.get("__name__") if type(mapping) is dict else None
    module = sys.modules.get(name) if type(name) is str else None
    return module if module is not None and getattr(module, "__dict__", None) is mapping else None


_SEQUENCES = (list, bytearray, collections.deque)


def _object(obj):
    return f"{type(obj).__qualname__} object at 0x{id(obj):x}"


def _key_text(key):
    if type(key) is locations.Identity:
        key = key.obj
    if locations.canonical(key) is key:  # builtin scalars: repr runs no user code
        text = repr(key)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"<{_object(key)}>"


def describe_location(target, key, site_kind):
    """`attribute 'n' of Counter object at 0x...`, `global 'x' of module 'app'`, ..."""
    if key is locations.SHAPE:
        return f"the shape (keys, length) of {_object(target)}"
    if key is locations.ITEMS:
        return f"the values of {_object(target)}"
    if type(key) is int and key < 0 and issubclass(type(target), _SEQUENCES):
        first = (-key - 1) * locations.BLOCK  # a block of items (a list-like's indices are >= 0)
        return f"items {first}..{first + locations.BLOCK - 1} of {_object(target)}"
    module = _module_of(target)
    if module is not None:
        return f"global {key!r} of module {module.__name__!r}"
    if site_kind.startswith("cell_"):
        return f"closure variable {key!r}"
    if site_kind.startswith("item_") or site_kind == "contains":
        what = "key" if issubclass(type(target), dict) else "index"
        return f"{what} {_key_text(key)} of {_object(target)}"
    if issubclass(type(target), type):
        return f"attribute {key!r} of class {target.__qualname__}"
    return f"attribute {key!r} of {_object(target)}"


def _word(site_id, is_write, atomic):
    kind = SITES[site_id].kind
    word = "delete" if kind.endswith("delete") else "write" if is_write else "read"
    return ("atomic " + word) if atomic else word


class Race:
    """One reported pair of accesses, in a form both output formats are made from."""

    type = "race"

    def __init__(self, event, history_full, sync_name):
        (target, key, site, tid, is_write, atomic, lockset,
         prev_site, prev_tid, prev_write, prev_atomic, prev_lockset, prev_stack) = event
        self.location = describe_location(target, key, SITES[site].kind)
        self.sites = (site, prev_site)
        self.pair = tuple(sorted(self.sites))  # how the runtime keys racing pairs
        names = mutex_names((*lockset, *prev_lockset))
        self.current = {
            "access": _word(site, is_write, atomic), "tid": tid, "thread": threads.describe(tid),
            "thread_name": threads.name(tid),
            "mutexes": [names[i] for i in lockset], "stack": stacks.capture(),
        }
        prev = SITES[prev_site]
        if history_full and prev_stack:
            prev_frames = stacks.from_code_lines(prev_stack)
        else:
            prev_frames = ((prev.function, prev.file, prev.line),)
        self.previous = {
            "access": _word(prev_site, prev_write, prev_atomic), "tid": prev_tid,
            "thread": threads.describe(prev_tid), "thread_name": threads.name(prev_tid),
            "mutexes": [names[i] for i in prev_lockset],
            "stack": prev_frames,
        }
        self.mutexes = {name: describe_lock(sync_name(i)) for i, name in names.items()}
        self.thread_origins = thread_origins({tid, prev_tid})
        self.tids = (tid, prev_tid)


def describe_lock(found):
    """`_thread.lock at 0x7f...` from the (type, address) a runtime keeps for each lock."""
    if found is None:
        return "a lock"
    tp, address = found
    return f"{tp.__module__}.{tp.__qualname__} at 0x{address:x}"


def format_text(race, strip=""):
    """The Go-style text of a race: rendered from its JSON form, as `racewatch report` does."""
    return render.race_text(as_dict(race, strip))


def as_dict(race, strip=""):
    """The JSON form of a race as plain data (also what `racewatch.races()` returns)."""
    def frames(fs):
        return [{"function": f, "file": strip_path(p, strip), "line": n} for f, p, n in fs]

    def side(access):
        return dict(access, stack=frames(access["stack"]))
    return {
        "type": "race", "location": race.location,
        "access": side(race.current), "previous": side(race.previous),
        "threads": [{"thread": n, "tid": t, "status": s, "created_at": frames(c)}
                    for t, n, s, c in race.thread_origins],
        "mutexes": race.mutexes,
    }


def format_json(race, strip="", ident=None):
    """One line of the JSON report stream; `ident` numbers the finding in its process."""
    record = as_dict(race, strip)
    if ident is not None:
        record = {"type": "race", "id": ident, **record}
    return jsonl.dumps(record)


def record_dict(record, strip=""):
    """The JSON form of any report: a race or a lock-order inversion."""
    if record.type == "race":
        return as_dict(record, strip)
    from racewatch.runtime import inversion
    return inversion.as_dict(record, strip)


class Reporter:
    """Receives race events from the runtime and writes reports as they are found."""

    def __init__(self, options, engine):
        self.options = options
        self.engine = engine
        self.json = options.format == "json"
        self.sink = Sink(options.log_path, self._header if self.json else None)
        # a bad file or rule stops the start
        self.suppressions = suppress.load(options.suppressions, options.suppress)
        self.baseline = None
        if options.baseline:
            from racewatch.reports import baseline
            self.baseline = baseline.load(options.baseline)
        self.echo = True      # write each report to the sink as it is found
        self.listeners = []   # listener(record, text) per report: the pytest plugin's attribution
        self.graph = None
        self.tree = None      # descendants.Tree: this process's place in a run, if any
        if options.detect_deadlocks:
            from racewatch.runtime import lockorder
            self.graph = lockorder.Graph(engine.sync_name, describe_lock, self.on_inversion,
                                         getattr(engine, "dead_locks", lambda: None),
                                         getattr(engine, "semaphore_locks", lambda: None))
        self.reset()

    def reset(self):
        """Forget what was reported (a fork child starts over)."""
        self.found = 0
        self.records = []        # the Race or lockorder.Inversion of every report, in order
        self.inversions = []     # the lock-order inversions among them
        self.suppressed = set()  # site pairs a suppression or the baseline matched: never counted
        self._lock = owned.forksafe()  # reports from two threads must not interleave
        self.suppressions.fired.clear()
        if self.baseline is not None:
            self.baseline.matched = 0
        if self.graph is not None:
            self.graph.reset()

    def decide(self):
        """Report the lock-order cycles still waiting for a verdict (lockorder.Graph.decide):
        at the end of a test, of the program, and before racewatch.races() answers."""
        if self.graph is not None:
            self.graph.decide()

    def on_race(self, event):
        race = Race(event, self.options.history == "full", self.engine.sync_name)
        if self.suppressions.match(race) is not None or self._known(as_dict(race)):
            self.suppressed.add(race.pair)
            return
        strip = self.options.strip_path_prefix
        self._emit(race, lambda ident: format_json(race, strip, ident) if self.json
                   else format_text(race, strip))

    def on_inversion(self, found):
        """A lock-order cycle from the lock-order graph (lockorder.Inversion)."""
        from racewatch.runtime import inversion
        tops = [frame for _, _, edge in found.steps
                for frame in (*edge.stack[:1], *edge.held_stack[:1])]
        tids = {edge.tid for _, _, edge in found.steps}
        if self.suppressions.match_inversion(inversion.frames_of(found), tids, tops) or \
                self._known(inversion.as_dict(found)):
            return
        strip = self.options.strip_path_prefix
        self._emit(found, lambda ident: inversion.format_json(found, strip, ident) if self.json
                   else inversion.format_text(found, strip), is_inversion=True)

    def _known(self, record):
        """In the baseline: known, so not reported (a run fails only on new findings)."""
        return self.baseline is not None and self.baseline.known(record)

    def _emit(self, record, form, is_inversion=False):
        """Count and write one report; `form(ident)` is its text (ident: its number here)."""
        with self._lock:
            self.found += 1
            self.records.append(record)
            if is_inversion:
                self.inversions.append(record)
            text = form(self.found)
            if self.echo or self.options.halt_on_error:
                self.sink.write(text)
            if self.tree is not None:  # before a halt: the top process learns of it
                self.tree.record(self.race_count(), len(self.inversions))
        for listener in list(self.listeners):
            listener(record, text)
        if self.options.halt_on_error:
            self.sink.write(self.summary())
            _flush_std()
            os._exit(self.options.exitcode)

    def pairs(self):
        """{(site, site): times raced} of the racing pairs no suppression matched."""
        return {pair: n for pair, n in self.engine.races().items() if pair not in self.suppressed}

    def race_count(self):
        """The data races the summary counts: racing pairs grouped by their two lines."""
        return len(render.group_pairs([site_pair(a, b, n, "")
                                       for (a, b), n in self.pairs().items()]))

    def _header(self):
        return jsonl.dumps(jsonl.header(self.options.strip_path_prefix, self.options.runtime))

    def summary(self, others=()):
        """This process's summary; `others`: what the processes it started found (the top
        process of a run, see descendants.py)."""
        strip = self.options.strip_path_prefix
        pairs = sorted(self.pairs().items())
        inversions = len(self.inversions)
        if self.json:
            ids = {race.pair: i for i, race in enumerate(self.records, 1) if race.type == "race"}
            return jsonl.dumps(jsonl.summary([
                {"id": ids.get((a, b)), "sites": [site_text(a, strip), site_text(b, strip)],
                 "accesses": [site_access(a), site_access(b)], "count": n}
                for (a, b), n in pairs], inversions, descendants=list(others) or None))
        own = render.summary_text([site_pair(a, b, n, strip) for (a, b), n in pairs],
                                  inversions) if pairs or inversions or not others else ""
        return own + descendants.summary_lines(others)

    def finish(self, status):
        """Print the summary; the exit status: `exitcode` when races or lock-order inversions
        were found, here or (the top process of a run) in a process it started, and the
        program itself would have exited 0 (as Go's runtime does). A process started under a
        run keeps its own status: its findings reach the top process. A JSON stream always
        ends with its summary, so a reader can tell a clean run from a killed one."""
        self.decide()
        if self.options.print_suppressions:
            self.sink.write(self.suppressions.used() or "racewatch: no suppressions used\n")
        others = self.tree.collect() if self.tree is not None else []
        if not self.pairs() and not self.inversions and not others:
            if self.json and self.echo:
                self.sink.write(self.summary())
            return status
        self.sink.write(self.summary(others))
        if self.tree is not None and not self.tree.top:
            return status
        return self.options.exitcode if status == 0 else status


def site_text(site_id, strip):
    site = SITES[site_id]
    return f"{strip_path(site.file, strip)}:{site.line}"


# What a site does, in plain words, where its kind's name is jargon.
_ACCESS_WORDS = {
    "super_read": "read", "cell_read": "closure variable read",
    "cell_write": "closure variable write", "cell_delete": "closure variable delete",
    "contains": "'in' test", "iter": "iteration", "compare": "comparison",
    "call": "builtin call (len, getattr...)",
    "method_read": "read by .{}()", "method_write": "write by .{}()",
    "method_atomic_read": "atomic read by .{}()", "method_atomic_write": "atomic write by .{}()",
}


def site_access(site_id):
    """What a site does, as the summary names it: `write`, `read`, `item write`,
    `atomic write by .append()`..."""
    site = SITES[site_id]
    words = _ACCESS_WORDS.get(site.kind)
    if words is None:
        return site.kind.replace("_", " ")
    return words.format(site.name) if "{}" in words else words


def site_pair(a, b, count, strip):
    """(site, access, site, access, count) of a racing pair, as text.group_pairs takes it."""
    return (site_text(a, strip), site_access(a), site_text(b, strip), site_access(b), count)


def site_label(site_id, strip):
    """`file:line (access)`: a read and a write on one line are two sites, told apart."""
    return render.site_label(site_text(site_id, strip), site_access(site_id))


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
