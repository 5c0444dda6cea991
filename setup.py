"""Build the optional C runtime (a failed compile falls back to the pure-Python twin) and
install the startup .pth next to the package, for wheels and editable installs alike."""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# Runs racewatch.activate only under -X race / PYTHONRACE. Named to be processed before
# coverage's a1_coverage.pth: its atexit handler then runs after coverage has saved its data.
PTH = "a0_racewatch.pth"
# Shared by both extensions: how a line is counted, and the capsule between them.
COUNTERS_API = "src/racewatch/cover/_counters_api.h"


class BuildPyWithPth(build_py):
    """Also put the .pth file at the top of site-packages."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # An editable wheel holds no build_lib files; setuptools' editable_wheel points
            # the install command at the unpacked wheel, whose top lands in site-packages.
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        self.copy_file(os.path.join("src", PTH), os.path.join(target, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return [*outputs, os.path.join(self.build_lib, PTH)]


class OptionalBuildExt(build_ext):
    """Never fail the install because the C runtime did not compile."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "use the twin"
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        print(f"racewatch: C runtime not built ({exc}); the pure-Python runtime will be used",
              file=sys.stderr)


# The C runtime's files (one job each, like TSan's), built as one extension. With gcc and
# clang they are compiled with link-time optimization: the fast path crosses files (a token's
# slot, the same-epoch test, the record lookup) and must inline as it did in one file.
FAST_DIR = "src/racewatch/runtime/fast"
FAST_SOURCES = sorted(os.path.join(FAST_DIR, name) for name in os.listdir(FAST_DIR)
                      if name.endswith(".c"))
FAST_HEADER = os.path.join(FAST_DIR, "fast.h")
UNIX_CC = os.name == "posix"
FAST_CFLAGS = ["-O2", "-fvisibility=hidden", "-flto"] if UNIX_CC else []
FAST_LDFLAGS = ["-O2", "-flto"] if UNIX_CC else []

setup(
    ext_modules=[
        Extension("racewatch.runtime._fast", FAST_SOURCES, depends=[COUNTERS_API, FAST_HEADER],
                  extra_compile_args=FAST_CFLAGS, extra_link_args=FAST_LDFLAGS, optional=True),
        # The main module as the interpreter runs it: no racewatch frame below (runmain.py).
        Extension("racewatch._asmain", ["src/racewatch/_asmain.c"], optional=True),
        # Lock hooks: every _thread.lock and RLock reports its acquire/release to the runtime.
        Extension("racewatch.runtime._locks", ["src/racewatch/runtime/_locks.c"],
                  depends=["src/racewatch/runtime/_locks_api.h"], extra_compile_args=["-O2"],
                  optional=True),
        # Coverage counters; without them racewatch.cover.pycounters counts, just as exactly.
        Extension("racewatch.cover._counters", ["src/racewatch/cover/_counters.c"],
                  depends=[COUNTERS_API], extra_compile_args=["-O2"], optional=True),
    ],
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithPth},
)
