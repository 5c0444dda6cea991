"""The rewritten-code cache: a warm start does not rewrite; bad cache files are replaced."""

import glob
import json
import os
import py_compile

from tests.helpers import clean_env, racewatch_args, run

MOD = "class C:\n    def get(self):\n        return self.x\n"
MAIN = ("import json, sys, mod\n"
        "from racewatch.rewriter import cache\n"
        "sys.stdout.write(json.dumps(cache.STATS))\n")


def make_program(tmp_path):
    (tmp_path / "mod.py").write_text(MOD)
    (tmp_path / "main.py").write_text(MAIN)


def stats(tmp_path, *options, **env):
    env.setdefault("PYTHONDONTWRITEBYTECODE", None)  # caching on, whatever the caller has
    proc = run(racewatch_args(*options, "main.py"), cwd=tmp_path, env=clean_env(**env))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def cache_files(root):
    return sorted(glob.glob(os.path.join(root, "**", "*-racewatch-*.pyc"), recursive=True))


def test_warm_start_does_not_rewrite(tmp_path):
    make_program(tmp_path)
    cold = stats(tmp_path)
    assert (cold["miss"], cold["write"], cold["hit"]) == (2, 2, 0)
    assert len(cache_files(tmp_path)) == 2
    warm = stats(tmp_path)
    assert (warm["hit"], warm["miss"], warm["write"]) == (2, 0, 0)


def test_warm_start_with_coverage_does_not_rewrite(tmp_path):
    # merged probes (a race token that counts its line) must marshal like every other probe
    make_program(tmp_path)
    cold = stats(tmp_path, "--cover=atomic")
    assert (cold["miss"], cold["write"], cold["write_failed"]) == (2, 2, 0)
    warm = stats(tmp_path, "--cover=atomic")
    assert (warm["hit"], warm["miss"], warm["write"]) == (2, 0, 0)


def test_edited_source_is_rewritten(tmp_path):
    make_program(tmp_path)
    stats(tmp_path)
    (tmp_path / "mod.py").write_text(MOD + "\n\nVALUE = 1\n")
    after = stats(tmp_path)
    assert (after["hit"], after["miss"], after["write"]) == (1, 1, 1)


def _spoil_with(tmp_path, spoil):
    make_program(tmp_path)
    stats(tmp_path)
    for path in cache_files(tmp_path):
        spoil(path)
    replaced = stats(tmp_path)
    assert (replaced["miss"], replaced["write"]) == (2, 2)
    assert stats(tmp_path)["hit"] == 2  # the replacement is good


def test_garbage_cache_file_is_ignored_and_replaced(tmp_path):
    _spoil_with(tmp_path, lambda path: open(path, "wb").write(b"\x00garbage" * 50))


def test_truncated_cache_file_is_ignored_and_replaced(tmp_path):
    def truncate(path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
    _spoil_with(tmp_path, truncate)


def test_foreign_pyc_is_ignored_and_replaced(tmp_path):
    source = tmp_path / "other.py"
    source.write_text("x = 1\n")
    foreign = py_compile.compile(str(source), cfile=str(tmp_path / "foreign.pyc"))
    with open(foreign, "rb") as f:
        data = f.read()
    _spoil_with(tmp_path, lambda path: open(path, "wb").write(data))


def test_pycache_that_is_a_file_only_skips_caching(tmp_path):
    make_program(tmp_path)
    (tmp_path / "__pycache__").write_text("not a directory")
    result = stats(tmp_path)
    assert (result["write"], result["write_failed"]) == (0, 2)


def test_pycache_prefix_is_honoured(tmp_path):
    make_program(tmp_path)
    prefix = tmp_path / "prefix"
    stats(tmp_path, PYTHONPYCACHEPREFIX=str(prefix))
    assert len(cache_files(prefix)) == 2
    assert not os.path.exists(tmp_path / "__pycache__")
    assert stats(tmp_path, PYTHONPYCACHEPREFIX=str(prefix))["hit"] == 2


def test_dont_write_bytecode_is_honoured(tmp_path):
    make_program(tmp_path)
    result = stats(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert result["write"] == 0 and not cache_files(tmp_path)


def test_no_cache_option(tmp_path):
    make_program(tmp_path)
    proc = run(racewatch_args("--no-cache", "main.py"), cwd=tmp_path,
               env=clean_env(PYTHONDONTWRITEBYTECODE=None))
    assert json.loads(proc.stdout)["write"] == 0 and not cache_files(tmp_path)
