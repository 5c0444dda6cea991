"""Baselines: `racewatch baseline` records the findings of JSON reports; with the option
`baseline`, those findings are known and only new ones fail a run (racewatch run, pytest)."""

import json
import os
import shutil
import sys

from racewatch.reports import baseline
from tests.helpers import FIXTURES, racewatch_args, run


def baseline_cmd(*args, cwd=None):
    return run([sys.executable, "-m", "racewatch", "baseline", *args], cwd=cwd)


def copy(tmp_path, *names):
    for name in names:
        shutil.copy(os.path.join(FIXTURES, name), tmp_path / name)
    return [str(tmp_path / name) for name in names]


def record(tmp_path, program, prefix="race"):
    proc = run(racewatch_args("--format=json", f"--log-path={tmp_path / prefix}", program),
               cwd=str(tmp_path))
    assert proc.returncode == 66, proc.stderr
    return sorted(str(p) for p in tmp_path.glob(f"{prefix}.*"))


def test_known_races_pass_and_new_ones_fail(tmp_path):
    known, new = copy(tmp_path, "race_write_write.py", "race_global_counter.py")
    made = baseline_cmd(*record(tmp_path, known), "-o", str(tmp_path / "base.json"))
    assert made.returncode == 0, made.stderr
    assert "racewatch: wrote 1 finding(s)" in made.stderr
    data = json.loads((tmp_path / "base.json").read_text())
    assert [f["sites"][0].split(":")[0] for f in data["findings"]] == ["race_write_write.py"]
    sarif = run([sys.executable, "-m", "racewatch", "report", "--format=sarif",
                 f"--root={tmp_path}", *tmp_path.glob("race.*")])
    alert, = json.loads(sarif.stdout)["runs"][0]["results"]  # the same fingerprint as SARIF's
    assert alert["partialFingerprints"]["racewatchFinding/v1"] == data["findings"][0]["fingerprint"]
    again = run(racewatch_args(f"--baseline={tmp_path / 'base.json'}", known), cwd=str(tmp_path))
    assert again.returncode == 0 and "DATA RACE" not in again.stderr, again.stderr
    other = run(racewatch_args(f"--baseline={tmp_path / 'base.json'}", new), cwd=str(tmp_path))
    assert other.returncode == 66 and "DATA RACE" in other.stderr


def test_the_baseline_survives_moved_lines_and_another_checkout(tmp_path):
    """No line numbers or absolute paths: files are relative to the baseline's directory."""
    first, second = tmp_path / "one", tmp_path / "two"
    for where in (first, second):
        where.mkdir()
    program, = copy(first, "race_write_write.py")
    baseline_cmd(*record(first, program), "-o", str(first / "base.json"))
    moved = second / "race_write_write.py"
    moved.write_text("# a new first line\n\n" + open(program).read())
    shutil.copy(first / "base.json", second / "base.json")
    proc = run(racewatch_args(f"--baseline={second / 'base.json'}", str(moved)), cwd=str(second))
    assert proc.returncode == 0, proc.stderr


def test_pytest_race_baseline(tmp_path):
    tests = tmp_path / "test_counter.py"
    tests.write_text("import threading\n\n\nclass C:\n    n = 0\n\n\n"
                     "def bump(c):\n    c.n += 1\n\n\n"
                     "def test_racy():\n    c = C()\n"
                     "    ts = [threading.Thread(target=bump, args=(c,)) for _ in range(2)]\n"
                     "    [t.start() for t in ts]\n    [t.join() for t in ts]\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--race"]
    first = run(pytest + ["--race-format=json", f"--race-log-path={tmp_path / 'race'}"],
                cwd=str(tmp_path))
    assert first.returncode == 1, first.stdout
    reports = sorted(str(p) for p in tmp_path.glob("race.*"))
    assert baseline_cmd(*reports, "-o", str(tmp_path / "base.json")).returncode == 0
    known = run(pytest + ["--race-baseline=base.json"], cwd=str(tmp_path))
    assert known.returncode == 0, known.stdout
    assert "known finding(s) not reported (baseline base.json)" in known.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = run(pytest + [f"--race-baseline={bad}"], cwd=str(tmp_path))
    assert refused.returncode == 4
    assert "malformed baseline file" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_baseline_files_are_one_line_errors(tmp_path):
    program, = copy(tmp_path, "race_write_write.py")
    cases = {"missing.json": None, "text.json": "{not json", "list.json": "[]",
             "other.json": '{"schema": "x", "findings": []}',
             "newer.json": '{"schema": "racewatch-baseline", "version": 9, "findings": []}',
             "entry.json": '{"schema": "racewatch-baseline", "version": 1, "findings": [3]}'}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_text(content)
        proc = run(racewatch_args(f"--baseline={tmp_path / name}", program), cwd=str(tmp_path))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (name, proc.stderr)
        assert "baseline file" in lines[0] and name in lines[0]


def test_baseline_of_a_missing_report_is_a_one_line_error(tmp_path):
    proc = baseline_cmd(str(tmp_path / "nothing.1"), "-o", str(tmp_path / "b.json"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


def test_written_baseline_reads_back(tmp_path):
    entries = [{"type": "race", "fingerprint": "ab", "sites": ["a.py:1", "a.py:2"]},
               {"type": "race", "fingerprint": "cd", "sites": ["a.py:0", "a.py:2"]}]
    path = tmp_path / "b.json"
    path.write_text(baseline.dumps(entries))
    assert baseline.load(str(path)).fingerprints == {"ab", "cd"}
