"""JSON reports of real runs: the schema, `racewatch report` merging and converting, SARIF."""

import json
import os
import signal
import sys

import jsonschema
import pytest

from racewatch.reports import stream
from tests.helpers import FIXTURES, PROGRAMS, ROOT, racewatch_args, run

SARIF_SCHEMA = os.path.join(ROOT, "tests", "data", "sarif-schema-2.1.0.json")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def json_run(program, tmp_path, name="race", *options):
    """Run `program` under racewatch with JSON reports; the report files it wrote."""
    prefix = tmp_path / name
    proc = run(racewatch_args("--format=json", f"--log-path={prefix}", *options, program),
               cwd=os.path.dirname(program))
    files = sorted(str(p) for p in tmp_path.glob(f"{name}.*"))
    return proc, files


def report(*args, cwd=None):
    return run([sys.executable, "-m", "racewatch", "report", *args], cwd=cwd)


def records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sarif_results(files, tmp_path, out="out.sarif"):
    proc = report(*files, "--format", "sarif", "-o", str(tmp_path / out), "--root", ROOT)
    log = load(tmp_path / out)
    jsonschema.Draft4Validator(load(SARIF_SCHEMA)).validate(log)
    results = log["runs"][0]["results"]
    assert proc.returncode == (66 if results else 0), proc.stderr
    return results


def fingerprints(results):
    return sorted(r["partialFingerprints"]["racewatchFinding/v1"] for r in results)


@pytest.mark.parametrize("name", ["race_write_write.py", "race_dict_cache_check_then_act.py",
                                  "race_lock_one_side.py", "race_nonlocal_accumulator.py",
                                  "norace_with_lock.py"])
def test_json_reports_of_fixtures_validate_against_the_shipped_schema(name, tmp_path):
    proc, files = json_run(os.path.join(FIXTURES, name), tmp_path)
    assert proc.returncode == (66 if name.startswith("race_") else 0), proc.stderr
    assert len(files) == 1, files
    validator = jsonschema.Draft7Validator(load(stream.SCHEMA_FILE))
    lines = records(files[0])
    for record in lines:
        validator.validate(record)
    kinds = [r["type"] for r in lines]
    assert kinds[0] == "header" and kinds[-1] == "summary"
    assert (lines[0]["pid"], lines[0]["version"]) == (int(files[0].rsplit(".", 1)[1]), 1)
    races = [r for r in lines if r["type"] == "race"]
    assert lines[-1]["races"] == len(races) and bool(races) == name.startswith("race_")
    assert sorted(p["id"] for p in lines[-1]["pairs"]) == [r["id"] for r in races]


def test_same_race_in_two_processes_has_the_same_fingerprints(tmp_path):
    program = os.path.join(FIXTURES, "race_write_write.py")
    runs = [json_run(program, tmp_path, name)[1] for name in ("one", "two")]
    prints = [fingerprints(sarif_results(files, tmp_path, f"{i}.sarif"))
              for i, files in enumerate(runs)]
    assert prints[0] == prints[1] and len(prints[0]) == 1


def test_different_races_have_different_fingerprints(tmp_path):
    files = [json_run(os.path.join(FIXTURES, name), tmp_path, name[:-3])[1][0]
             for name in ("race_write_write.py", "race_global_counter.py")]
    results = sarif_results(files, tmp_path)
    prints = fingerprints(results)
    assert len(results) == 2 and len(set(prints)) == len(prints)  # global_counter: one x += 1
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"fixtures/race_write_write.py", "fixtures/race_global_counter.py"}


def test_report_merges_two_processes(tmp_path):
    program = os.path.join(FIXTURES, "race_write_write.py")
    files = json_run(program, tmp_path, "a")[1] + json_run(program, tmp_path, "b")[1]
    assert len(files) == 2
    text = report(*files)
    assert text.returncode == 66, text.stderr  # findings: the status of a run with races
    assert text.stdout.count("WARNING: DATA RACE") == 1  # one race, found by both processes
    assert "racewatch: found 1 data race(s)" in text.stdout and "(2 times)" in text.stdout
    summary = text.stdout.splitlines()[-1]  # each site with what it does, as the runtime says
    assert summary.count("(write)") == 2 and summary.endswith("(2 times)"), summary
    merged = tmp_path / "merged.json"
    assert report(*files, "--format=json", "-o", str(merged)).returncode == 66
    lines = records(merged)
    validator = jsonschema.Draft7Validator(load(stream.SCHEMA_FILE))
    for record in lines:
        validator.validate(record)
    header, race, summary = lines
    assert [s["file"] for s in header["sources"]] == files and header["pid"] is None
    assert (race["count"], race["processes"], summary["processes"]) == (2, 2, 2)
    again = report(str(merged))  # a merged report reads like any other
    assert again.stdout == text.stdout


def test_killed_process_report_is_read_up_to_its_last_line(tmp_path):
    proc, files = json_run(os.path.join(PROGRAMS, "report_killed.py"), tmp_path)
    assert proc.returncode == -signal.SIGKILL
    assert [r["type"] for r in records(files[0])] == ["header", "race"]
    with open(files[0], "a", encoding="utf-8") as f:
        f.write('{"type": "race", "location": "attr')  # as if killed inside a write
    out = report(files[0])
    assert out.returncode == 66 and out.stdout.count("WARNING: DATA RACE") == 1
    warnings = out.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("racewatch: warning: ") for w in warnings)
    assert "cut-off last line" in warnings[0] and "no summary" in warnings[1]


@pytest.mark.parametrize("kind", ["missing", "text report", "newer schema", "directory"])
def test_bad_input_is_one_line_and_non_zero(kind, tmp_path):
    good = json_run(os.path.join(FIXTURES, "race_write_write.py"), tmp_path)[1][0]
    bad = tmp_path / "bad"
    if kind == "text report":
        proc = run(racewatch_args(f"--log-path={tmp_path / 'text'}",
                                  os.path.join(FIXTURES, "race_write_write.py")))
        assert proc.returncode == 66
        (path,) = tmp_path.glob("text.*")
        bad = path
    elif kind == "newer schema":
        lines = open(good, encoding="utf-8").read().splitlines(keepends=True)
        first = json.loads(lines[0])
        first["version"] = stream.VERSION + 1
        bad.write_text(json.dumps(first) + "\n" + "".join(lines[1:]), encoding="utf-8")
    elif kind == "directory":
        bad.mkdir()
    proc = report(good, str(bad), "--format", "sarif", "-o", str(tmp_path / "out.sarif"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"racewatch: {bad}") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.sarif").exists()  # nothing half-written


def test_help_lists_the_report_command():
    proc = run([sys.executable, "-m", "racewatch", "--help"])
    assert "racewatch report FILE..." in proc.stdout
    usage = report("--help")
    assert usage.returncode == 0 and "--format {text,json,sarif}" in usage.stdout


def test_a_lock_order_inversion_goes_through_json_report_and_sarif(tmp_path):
    """The runtime's inversion record validates, converts to text and SARIF, and keeps its
    fingerprint across two processes."""
    program = os.path.join(FIXTURES, "deadlock_two_threads_opposite_order.py")
    runs = [json_run(program, tmp_path, name) for name in ("one", "two")]
    validator = jsonschema.Draft7Validator(load(stream.SCHEMA_FILE))
    for proc, files in runs:
        assert proc.returncode == 66, proc.stderr
        lines = records(files[0])
        for record in lines:
            validator.validate(record)
        found = [r for r in lines if r["type"] == "lock-order-inversion"]
        assert len(found) == 1 and lines[-1]["lock_order_inversions"] == 1
    text = report(*runs[0][1])
    assert text.returncode == 66, text.stderr
    assert "WARNING: lock-order-inversion (potential deadlock)" in text.stdout
    prints = [fingerprints(sarif_results(files, tmp_path, f"{i}.sarif"))
              for i, (_, files) in enumerate(runs)]
    assert prints[0] == prints[1] and len(prints[0]) == 1
    rules = {r["ruleId"] for r in sarif_results(runs[0][1], tmp_path, "rules.sarif")}
    assert rules == {"lock-order-inversion"}


def test_report_exits_66_on_findings_and_0_without_or_with_exit_zero(tmp_path):
    racy = json_run(os.path.join(FIXTURES, "race_write_write.py"), tmp_path, "racy")[1]
    clean = json_run(os.path.join(FIXTURES, "norace_lock_acquire_release.py"), tmp_path,
                      "clean")[1]
    assert report(*racy).returncode == 66
    assert report(*clean).returncode == 0
    for form in ("text", "json", "sarif"):
        proc = report(*racy, f"--format={form}", "--exit-zero", "-o", str(tmp_path / form))
        assert proc.returncode == 0, proc.stderr
