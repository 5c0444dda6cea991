"""Racewatch's own functions call the builtins as they were at its import (racewatch/pristine.py),
never a program's replacement: every module binds the copy before it defines anything."""

import ast
import builtins
import importlib

from racewatch import pristine
from tests.unit.test_imports import modules

DEFINES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
BINDING = "from racewatch.pristine import __builtins__"


def test_every_module_binds_the_copy_before_it_defines_anything():
    late = []
    for name, path in sorted(modules().items()):
        if name == "racewatch.pristine":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        binding = next((node.lineno for node in tree.body if isinstance(node, ast.ImportFrom)
                        and node.module == "racewatch.pristine"
                        and [a.name for a in node.names] == ["__builtins__"]), None)
        first = min((node.lineno for node in ast.walk(tree) if isinstance(node, DEFINES)),
                    default=None)
        if binding is None or (first is not None and first < binding):
            late.append(name)
    assert late == [], f"modules without `{BINDING}` before their first definition"


def test_a_replaced_builtin_is_not_seen_by_racewatch():
    api = importlib.import_module("racewatch.runtime.api")
    original = builtins.len
    builtins.len = lambda obj: 0
    try:
        assert api._probe.__builtins__ is pristine.__builtins__
        assert api._probe.__builtins__["len"] is original
    finally:
        builtins.len = original
