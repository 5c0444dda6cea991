"""Which module globals are variables (locations) and which are stable definitions."""

import pytest

from racewatch import env
from racewatch.rewriter.scopes import global_variables, module_names

SOURCE = '''
import os, sys as system
from json import loads
counter = 0
DEBUG = False
def bump():
    local = 1
    global counter
    counter += 1
class C:
    attr = 1
if DEBUG:
    def handler(): pass
else:
    handler = None
for i in range(3):
    pass
if (walrus := 5):
    pass
def gone(): pass
del gone
'''


def test_variables_and_definitions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    variables = global_variables(str(path))
    assert variables == {"counter", "DEBUG", "handler", "i", "walrus", "gone"}
    assert not {"os", "system", "loads", "bump", "C", "attr", "local"} & variables


def test_unreadable_source_means_everything_is_a_variable(tmp_path):
    assert global_variables(str(tmp_path / "missing.py")) is None
    bad = tmp_path / "bad.py"
    bad.write_text("def (:\n")
    assert global_variables(str(bad)) is None


@pytest.mark.skipif(not env.PY315_PLUS, reason="`lazy import` is 3.15 syntax (PEP 810)")
def test_lazy_imports_are_named(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\nlazy import json, xml.dom as dom, email.message\n"
                    "lazy from collections import OrderedDict as OD, deque\ncount = 0\n")
    variables, lazy = module_names(str(path))
    assert lazy == {"json", "dom", "email", "OD", "deque"}
    assert variables == {"count"}


def test_lazy_modules_and_the_all_mode(tmp_path):
    """`__lazy_modules__` and `-X lazy_imports=all` make plain top-level imports lazy (3.15;
    the names are only read from the source, so any version can tell them)."""
    path = tmp_path / "m.py"
    path.write_text("__lazy_modules__ = ['json', 'os.path']\nimport json, sys\n"
                    "from os.path import join\ntry:\n    import csv\nexcept ImportError:\n"
                    "    pass\ndef f():\n    import re\n")
    assert module_names(str(path))[1] == {"json", "join"}
    assert module_names(str(path), all_lazy=True)[1] == {"json", "sys", "join"}
    path.write_text("__lazy_modules__ = compute()\nimport json\n")
    assert module_names(str(path))[1] == set()
