"""Build the optional C runtime; a failed compile falls back to the pure-Python twin."""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


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


setup(
    ext_modules=[
        Extension("racewatch.runtime._fast", ["src/racewatch/runtime/_fast.c"],
                  extra_compile_args=["-O2"], optional=True),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
