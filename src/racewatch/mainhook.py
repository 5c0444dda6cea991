"""Under -X race / PYTHONRACE: the interpreter's own main module runs through racewatch's runner.

The interpreter compiles `python SCRIPT` itself, with no hook on the way. But it first asks
sys.path_hooks whether SCRIPT is an import path entry (a zip or a directory), and if one
answers, it runs `runpy._run_module_as_main("__main__", False)` instead, looked up on runpy
at that moment; `python -m MOD` always goes through `_run_module_as_main(MOD, True)`. So a
path hook that answers for exactly SCRIPT, and a replacement `_run_module_as_main`, put the
main module in racewatch's hands after site has finished, with no frame of ours left in its
tracebacks: the script runs through runmain.run_path (as under `racewatch run`), `-m` and
directory mains through runpy itself, behind the import hook. Then, as `racewatch run` does,
the program's threads are joined and its atexit handlers run, the summary is printed, and
the exit status becomes `exitcode` if the program would have exited 0 with races.
"""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import os
import sys

from racewatch.rewriter import interop


class _ScriptEntry:
    """What the path hook answers for SCRIPT: an import path entry that finds nothing."""

    def find_spec(self, fullname, target=None):
        return None

    def invalidate_caches(self):
        pass


class MainHook:
    """Installed at startup; used (and removed) once, when the interpreter runs __main__."""

    def __init__(self, session, script, on_takeover):
        self.session = session
        self.script = script  # sys.argv[0] of `python SCRIPT` when it is a plain file, or None
        self.script_abs = os.path.abspath(script) if script is not None else None
        self.on_takeover = on_takeover  # told when the runner takes over the end of the process
        self.runpy = None
        self.original = None

    def install(self):
        """False when runpy lacks the seam: __main__ then runs uninstrumented."""
        self.runpy = interop.runpy_main()
        if self.runpy is None:
            return False
        self.original = self.runpy._run_module_as_main
        self.runpy._run_module_as_main = self.run_main
        if self.script is not None:
            sys.path_hooks.insert(0, self.path_hook)
        return True

    def path_hook(self, entry):
        if self.script_abs is not None and os.path.abspath(entry) == self.script_abs:
            return _ScriptEntry()
        raise ImportError("not the main script")  # the next path hook decides

    def _uninstall(self):
        self.runpy._run_module_as_main = self.original  # later callers (runmain) get the real one
        if self.path_hook in sys.path_hooks:
            sys.path_hooks.remove(self.path_hook)
        for entry, finder in list(sys.path_importer_cache.items()):
            if isinstance(finder, _ScriptEntry):
                del sys.path_importer_cache[entry]

    def run_main(self, mod_name, alter_argv=True):
        """Stands in for runpy._run_module_as_main; runs the program, then ends it."""
        from racewatch import runmain
        self._uninstall()
        self.on_takeover()
        if (self.script is not None and mod_name == "__main__" and not alter_argv
                and sys.path and os.path.abspath(sys.path[0]) == self.script_abs):
            outcome = self._run_script(runmain)
        else:
            outcome = runmain.run_guarded(self.original, mod_name, alter_argv)
        status = self.session.end(outcome)
        if status:
            raise SystemExit(status)

    def _run_script(self, runmain):
        safe_path = sys.flags.safe_path  # -P: no script directory on sys.path
        if safe_path:
            del sys.path[0]
        session = self.session

        def instrument(path, compile_code):
            if not session.selector.wants("__main__", path):
                return compile_code()  # e.g. a console script in the environment's bin/
            return session.instrumenter.code_for(path, compile_code)

        return runmain.run_path(self.script, sys.argv[1:], instrument, set_path0=not safe_path)
