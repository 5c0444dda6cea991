"""coverage.py data files, written through coverage's public CoverageData API as `coverage run -p`
would write them for the same program, under the user's coverage configuration."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

from racewatch.cover import atomicwrite

# Files coverage.py reads its configuration from when `config_file=True`, in its own order;
# the shared ones count only with a coverage section in them.
_CONFIG_FILES = ((".coveragerc", None), ("setup.cfg", "[coverage:"), ("tox.ini", "[coverage:"),
                 ("pyproject.toml", "[tool.coverage"))


class Settings:
    """The parts of the user's coverage configuration that decide what a data file holds."""

    def __init__(self, start_dir):
        self.start_dir = start_dir  # where the program started: relative settings start here
        cov = _coverage_object(start_dir)
        option = cov.get_option
        self.data_file = os.path.join(start_dir, option("run:data_file") or ".coverage")
        self.branch = bool(option("run:branch"))
        self.source = list(option("run:source") or []) + list(option("run:source_pkgs") or [])
        self.include = list(option("run:include") or [])
        self.omit = list(option("run:omit") or [])
        self.relative_files = bool(option("run:relative_files"))
        self.context = option("run:context") or None
        self.namespace_packages = bool(option("report:include_namespace_packages"))


def _coverage_object(start_dir):
    """A Coverage object holding the configuration (never started: it only reads it)."""
    import coverage
    config_file = True
    if os.path.realpath(os.getcwd()) != os.path.realpath(start_dir):
        config_file = _find_config(start_dir)  # the program moved: look where it started
    return coverage.Coverage(config_file=config_file, data_file=None)


def _find_config(start_dir):
    named = os.environ.get("COVERAGE_RCFILE")
    if named:
        return os.path.join(start_dir, named)
    for name, marker in _CONFIG_FILES:
        path = os.path.join(start_dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            continue
        if marker is None or marker in text:
            return path
    return False


class Selection:
    """Which measured files go into the data file: coverage.py's own source/include/omit rules
    (it does not filter data it is handed, so racewatch must)."""

    def __init__(self, settings):
        from coverage.files import GlobMatcher, TreeMatcher
        self.settings = settings
        start = settings.start_dir
        self.source_dirs, self.source_pkgs = [], []
        for entry in settings.source:
            path = os.path.join(start, entry)
            if os.path.isdir(path):
                self.source_dirs.append(os.path.realpath(path))
            else:
                self.source_pkgs.append(entry)
        self.tree = TreeMatcher(self.source_dirs) if self.source_dirs else None
        self.include = GlobMatcher(_prep(settings.include, start)) if settings.include else None
        self.omit = GlobMatcher(_prep(settings.omit, start)) if settings.omit else None
        self._modules = None  # {real path: module name}, made only if a source package asks
        self._package_tree = None

    def wants(self, path):
        if self.omit is not None and self.omit.match(path):
            return False
        if self.settings.source:
            return bool(self.tree and self.tree.match(path)) or self._in_source_package(path)
        if self.include is not None:
            return self.include.match(path)
        return True

    def _in_source_package(self, path):
        """In a source package: by the module's name, or by lying in the package's directory
        (the main module, run by `-m pkg.app` or by path, is named `__main__`)."""
        if not self.source_pkgs:
            return False
        if self._modules is None:  # a realpath per loaded module: hundreds of syscalls
            self._modules = _module_files()
            from coverage.files import TreeMatcher
            dirs = self._package_dirs()
            self._package_tree = TreeMatcher(dirs) if dirs else None
        name = self._modules.get(path)
        if name and any(name == pkg or name.startswith(pkg + ".") for pkg in self.source_pkgs):
            return True
        return bool(self._package_tree and self._package_tree.match(path))

    def _package_dirs(self):
        """The directories of the source packages that were imported."""
        dirs = []
        for pkg in self.source_pkgs:
            module = sys.modules.get(pkg)
            init = getattr(module, "__file__", None)
            if init and os.path.basename(init).startswith("__init__."):
                dirs.append(os.path.dirname(os.path.realpath(init)))
        return dirs

    def unexecuted(self, measured):
        """Python files under `source` that never ran (coverage.py lists them at 0%)."""
        from coverage.files import find_python_files
        roots = list(self.source_dirs) + self._package_dirs()
        found = set()
        for root in roots:
            for path in find_python_files(root, self.settings.namespace_packages):
                path = os.path.realpath(path)
                if path not in measured and self.wants(path):
                    found.add(path)
        return found


def _prep(patterns, start):
    """coverage.files.prep_patterns, relative to where the program started."""
    prepped = []
    for pattern in patterns:
        prepped.append(pattern)
        if not pattern.startswith(("*", "?")):
            prepped.append(os.path.realpath(os.path.join(start, pattern)))
    return prepped


def _module_files():
    names = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            names.setdefault(os.path.realpath(path), name)
    return names


BRANCH_REFUSED = ("coverage.py's configuration asks for branch coverage (branch = true), which "
                  "racewatch does not measure: no .coverage.racewatch.* file is written (its "
                  "lines would show as partial branches); the line counts are in "
                  ".racewatch-cover.*.json (racewatch cover report)")


def data_file_name(settings, suffix):
    """`.coverage.racewatch.SUFFIX` next to the configured data file: combinable by coverage."""
    return f"{settings.data_file}.racewatch.{suffix}"


def write(path, executed, settings, selection):
    """Write the data file at `path` (atomically) for `executed`: {real path: set of lines}.

    Returns False when no measured file is selected (no file is written). Under
    `branch = true` nothing is written either (see BRANCH_REFUSED): racewatch counts lines, and
    lines without arcs would show as partial branches.
    """
    if settings.branch:
        return False
    from coverage import CoverageData
    measured = {p: lines for p, lines in executed.items() if selection.wants(p)}
    untouched = selection.unexecuted(set(executed)) if settings.source else set()
    if not measured and not untouched:
        return False
    name = _relative if settings.relative_files else (lambda p, start: p)
    tmp = atomicwrite.temp_path(path)
    try:
        data = CoverageData(basename=tmp, warn=_warn)
        if settings.context:
            data.set_context(settings.context)
        data.add_lines({name(p, settings.start_dir): sorted(lines)
                        for p, lines in measured.items() if lines})
        empty = [name(p, settings.start_dir) for p, lines in measured.items() if not lines]
        empty += [name(p, settings.start_dir) for p in sorted(untouched)]
        if empty:
            data.touch_files(empty)
        data.write()
        data.close(force=True)
        atomicwrite.fsync_file(tmp)
        atomicwrite.publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def _relative(path, start):
    """coverage.files.relative_filename, relative to where the program started."""
    prefix = os.path.join(os.path.realpath(start), "")
    if os.path.normcase(path).startswith(os.path.normcase(prefix)):
        return path[len(prefix):]
    return path


def _warn(message, slug=None, once=False):
    sys.stderr.write(f"racewatch: coverage.py: {message}\n")
