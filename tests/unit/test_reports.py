"""JSON reports in, text / JSON / SARIF out: reading, merging, identity, schema (no subprocess)."""

import json
import os

import jsonschema
import pytest

from racewatch.reports import identity, merge, reader, sarif, stream, text
from tests.helpers import ROOT

SARIF_SCHEMA = os.path.join(ROOT, "tests", "data", "sarif-schema-2.1.0.json")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


REPORT_VALIDATOR = jsonschema.Draft7Validator(load(stream.SCHEMA_FILE))
SARIF_VALIDATOR = jsonschema.Draft4Validator(load(SARIF_SCHEMA))


def frame(function, file, line):
    return {"function": function, "file": file, "line": line}


def race(location="attribute 'n' of Counter object at 0x7f0001", first=("bump", 12, "write"),
         second=("bump", 12, "read"), file="/repo/app.py", ident=1):
    (f1, l1, a1), (f2, l2, a2) = first, second
    return {
        "type": "race", "id": ident, "location": location,
        "access": {"access": a1, "tid": 2, "thread": "thread T2 'w-1'", "thread_name": "w-1",
                   "mutexes": ["M1"], "stack": [frame(f1, file, l1), frame("main", file, 30)]},
        "previous": {"access": a2, "tid": 1, "thread": "thread T1 'w-0'", "thread_name": "w-0",
                     "mutexes": [], "stack": [frame(f2, file, l2)]},
        "threads": [{"thread": "thread T1 'w-0'", "tid": 1, "status": "finished",
                     "created_at": [frame("main", file, 20)]},
                    {"thread": "thread T2 'w-1'", "tid": 2, "status": "running",
                     "created_at": [frame("main", file, 21)]}],
        "mutexes": {"M1": "_thread.lock at 0x7f0002"},
    }


def inversion(file="/repo/app.py"):
    a, b = "_thread.lock at 0x7f0010", "_thread.lock at 0x7f0020"
    return {"type": "lock-order-inversion", "id": 2, "cycle": [
        {"lock": {"description": b, "created_at": [frame("<module>", file, 3)]},
         "acquired": {"thread": "thread T1 'one'", "stack": [frame("one", file, 10)],
                      "while_holding": {"description": a, "stack": [frame("one", file, 9)]}}},
        {"lock": {"description": a, "created_at": [frame("<module>", file, 2)]},
         "acquired": {"thread": "thread T2 'two'", "stack": [frame("two", file, 15)],
                      "while_holding": {"description": b, "stack": [frame("two", file, 14)]}}},
    ]}


def header(pid=100, version=1, **extra):
    return {"type": "header", "schema": "racewatch-report", "version": version,
            "racewatch": "0.1.0", "python": "3.12.1", "pid": pid, "argv": ["app.py"],
            "cwd": "/repo", "strip_path_prefix": "", **extra}


def summary(*pairs):
    return stream.summary([{"id": i, "sites": ["/repo/app.py:12", "/repo/app.py:12"], "count": n}
                           for i, n in pairs])


def write(path, records, tail=""):
    path.write_text("".join(stream.dumps(r) for r in records) + tail, encoding="utf-8")
    return str(path)


def read(path):
    warnings = []
    return reader.read(path, warnings.append), warnings


# -- the schema ------------------------------------------------------------------------------

def test_shipped_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(load(stream.SCHEMA_FILE))


@pytest.mark.parametrize("record", [header(), race(), inversion(), summary((1, 3))],
                         ids=["header", "race", "inversion", "summary"])
def test_each_record_kind_validates(record):
    REPORT_VALIDATOR.validate(record)


@pytest.mark.parametrize("change", [
    lambda r: r.update(type="rase"),
    lambda r: r["access"].update(access="scribble"),
    lambda r: r["previous"].pop("stack"),
    lambda r: r["access"]["stack"][0].pop("line"),
    lambda r: r.update(mutexes={"lock": "x"}),
], ids=["type", "access kind", "no stack", "frame without line", "mutex name"])
def test_schema_rejects_malformed_races(change):
    record = race()
    change(record)
    assert list(REPORT_VALIDATOR.iter_errors(record))


def test_schema_refuses_a_newer_header_version():
    assert list(REPORT_VALIDATOR.iter_errors(header(version=2)))


def test_inversion_cycle_needs_two_edges():
    record = inversion()
    record["cycle"] = record["cycle"][:1]
    assert list(REPORT_VALIDATOR.iter_errors(record))


# -- text ------------------------------------------------------------------------------------

def test_race_text_has_go_shape():
    out = text.race_text(race())
    lines = out.splitlines()
    assert lines[:3] == ["==================", "WARNING: DATA RACE",
                         "Write of attribute 'n' of Counter object at 0x7f0001 by "
                         "thread T2 'w-1' (mutexes: M1):"]
    assert "Previous read by thread T1 'w-0':" in lines
    assert "Thread T1 'w-0' (finished) created at:" in lines
    assert "Mutex M1 is _thread.lock at 0x7f0002" in lines
    assert lines[-1] == "=================="


def test_inversion_text_names_the_cycle_and_every_acquisition():
    out = text.inversion_text(inversion())
    assert "WARNING: lock-order-inversion (potential deadlock)" in out
    assert ("Cycle in lock order graph: M2 (_thread.lock at 0x7f0010) => "
            "M1 (_thread.lock at 0x7f0020) => M2 (_thread.lock at 0x7f0010)") in out
    assert "Mutex M1 acquired here while holding mutex M2 in thread T1 'one':" in out
    assert "Mutex M2 acquired here while holding mutex M1 in thread T2 'two':" in out
    assert out.count("created at:") == 2


def test_summary_text():
    assert text.summary_text([("a.py:1", "write", "a.py:2", "read", 1),
                              ("b.py:3", "read", "b.py:3", "write", 4)]) == (
        "racewatch: found 2 data race(s)\n  a.py:1 (write) vs a.py:2 (read) (1 time)\n"
        "  b.py:3 vs b.py:3 (read, write) (4 times)\n")


def test_summary_groups_the_pairs_of_two_lines():
    """One `x += 1` is one finding: its read/write and write/write pairs share a line."""
    pairs = [("b.py:3", "read", "b.py:3", "write", 2), ("b.py:3", "write", "b.py:3", "write", 3),
             ("a.py:9", "read", "a.py:1", "write", 1), ("a.py:1", "write", "a.py:9", "write", 1),
             ("c.py:5", None, "c.py:6", None, 1)]
    assert text.summary_text(pairs) == (
        "racewatch: found 3 data race(s)\n"
        "  a.py:1 (write) vs a.py:9 (read, write) (1 time)\n"
        "  b.py:3 vs b.py:3 (read, write) (3 times)\n"
        "  c.py:5 vs c.py:6 (1 time)\n")


# -- reading ---------------------------------------------------------------------------------

def test_read_takes_counts_from_the_summary(tmp_path):
    (report,), warnings = read(write(tmp_path / "r.1", [header(), race(), summary((1, 7))]))
    assert warnings == [] and report.complete
    assert report.count(report.findings[0]) == 7


def test_cut_off_last_line_is_skipped_with_a_warning(tmp_path):
    line = stream.dumps(race(ident=2))
    path = write(tmp_path / "r.1", [header(), race()], tail=line[:len(line) // 2])
    (report,), warnings = read(path)
    assert [f["id"] for f in report.findings] == [1]
    assert not report.complete and report.count(report.findings[0]) == 1
    assert any("cut-off last line" in w and "r.1:3" in w for w in warnings)
    assert any("no summary" in w for w in warnings)


def test_a_reused_pid_appends_a_second_stream(tmp_path):
    path = write(tmp_path / "r.1", [header(), race(), summary((1, 2)),
                                    header(), race(ident=1, location="global 'x' of module 'm'"),
                                    summary((1, 3))])
    reports, warnings = read(path)
    assert [len(r.findings) for r in reports] == [1, 1] and warnings == []
    assert [r.count(r.findings[0]) for r in reports] == [2, 3]


def test_unknown_record_types_are_skipped(tmp_path):
    path = write(tmp_path / "r.1", [header(), {"type": "suppressions", "fired": []}, summary()])
    (report,), warnings = read(path)
    assert report.findings == [] and "unknown type 'suppressions'" in warnings[0]


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("==================\nWARNING: DATA RACE\n", "line 1 is not JSON"),
    ('{"type": "race"}\n', "no header on line 1"),
    ('{"type": "header", "schema": "other", "version": 1}\n', "schema 'other'"),
    ('[1, 2]\n', "no header on line 1"),
    (stream.dumps(header(version=2)), "schema version 2 is newer"),
    (stream.dumps(header(version="1")), "bad report schema version"),
    (stream.dumps(header()) + "{nope\n" + stream.dumps(summary()), "r.1:2: not valid JSON"),
    (stream.dumps(header()) + '{"type": "race", "location": "x"}\n', "without 'access'"),
    (b"\xff\xfe".decode("latin-1"), "not UTF-8"),
], ids=["empty", "text report", "no header", "other schema", "not an object", "newer",
        "version type", "bad middle line", "missing key", "binary"])
def test_bad_input_is_a_one_line_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "r.1"
    path.write_bytes(content.encode("latin-1" if message == "not UTF-8" else "utf-8"))
    with pytest.raises(reader.ReportError) as info:
        reader.read(str(path), lambda w: None)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(reader.ReportError, match="no-such-file.*No such file"):
        reader.read(str(tmp_path / "no-such-file"), lambda w: None)


# -- identity and merging --------------------------------------------------------------------

def swapped(record):
    """The same race seen the other way round: the other thread came second."""
    other = dict(record, access=record["previous"], previous=record["access"])
    return dict(other, location=record["location"].replace("0x7f0001", "0x55aa00"))


def test_the_same_race_seen_the_other_way_round_is_one_key_and_fingerprint():
    assert identity.key(race()) == identity.key(swapped(race()))
    assert identity.fingerprint(race(), str) == identity.fingerprint(swapped(race()), str)


def test_fingerprint_ignores_lines_and_addresses_but_not_what_raced():
    base = identity.fingerprint(race(), str)
    moved = race(first=("bump", 40, "write"), second=("bump", 41, "read"),
                 location="attribute 'n' of Counter object at 0x1234")
    assert identity.fingerprint(moved, str) == base
    assert identity.key(moved) != identity.key(race())  # merging does keep lines apart
    for other in (race(location="attribute 'm' of Counter object at 0x1"),
                  race(first=("other", 12, "write")),
                  race(second=("bump", 12, "write")),
                  race(file="/repo/lib.py")):
        assert identity.fingerprint(other, str) != base


def test_inversion_identity_does_not_depend_on_where_the_cycle_starts():
    record = inversion()
    rotated = dict(record, cycle=record["cycle"][1:] + record["cycle"][:1])
    assert identity.key(record) == identity.key(rotated)
    assert identity.fingerprint(record, str) == identity.fingerprint(rotated, str)


def test_merge_sums_counts_of_the_same_race_across_processes(tmp_path):
    one = write(tmp_path / "r.1", [header(1), race(), summary((1, 2))])
    two = write(tmp_path / "r.2", [header(2), swapped(race()),
                                   race(ident=2, location="global 'x' of module 'm'"),
                                   summary((1, 5), (2, 1))])
    findings = merge.merge([*read(one)[0], *read(two)[0]])
    counts = sorted((f.record["location"].split(" of ")[0], f.count, f.processes)
                    for f in findings)
    assert counts == [("attribute 'n'", 7, 2), ("global 'x'", 1, 1)]


# -- SARIF -----------------------------------------------------------------------------------

def reports_of(tmp_path, *records):
    return read(write(tmp_path / "r.1", [header(), *records, summary((1, 3))]))[0]


def test_sarif_validates_and_points_into_the_repository(tmp_path):
    findings = merge.merge(reports_of(tmp_path, race(), inversion()))
    log = sarif.sarif_log(findings, "/repo", "0.1.0")
    SARIF_VALIDATOR.validate(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///repo/"}}
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["data-race",
                                                               "lock-order-inversion"]
    data_race, deadlock = sorted(run["results"], key=lambda r: r["ruleIndex"])
    assert data_race["ruleId"] == "data-race" and data_race["properties"]["count"] == 3
    place = data_race["locations"][0]["physicalLocation"]
    assert place == {"artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
                     "region": {"startLine": 12}}
    related = [r["message"]["text"] for r in data_race["relatedLocations"]]
    assert related == ["previous read by thread T1 'w-0'", "thread T1 'w-0' created here",
                       "thread T2 'w-1' created here"]
    assert "0x" not in data_race["message"]["text"]
    assert [len(s["frames"]) for s in data_race["stacks"]] == [2, 1]
    assert deadlock["ruleId"] == "lock-order-inversion"
    assert len(deadlock["relatedLocations"]) == 4  # two acquisitions, two creations


def test_sarif_gives_one_x_plus_equals_one_one_alert(tmp_path):
    """The read/write and write/write races of one `x += 1` (same two lines) are one alert;
    its properties keep both pairs. Another line is another alert."""
    records = [race(ident=1), race(second=("bump", 12, "write"), ident=2),
               race(second=("bump", 14, "write"), ident=3)]
    found = read(write(tmp_path / "r.1", [header(), *records,
                                          summary((1, 3), (2, 3), (3, 1))]))[0]
    results = sarif.sarif_log(merge.merge(found), "/repo", "0")["runs"][0]["results"]
    SARIF_VALIDATOR.validate(sarif.sarif_log(merge.merge(found), "/repo", "0"))
    accesses = sorted(sorted(r["properties"]["accesses"]) for r in results)
    assert accesses == [[["write", "read"], ["write", "write"]], [["write", "write"]]]
    assert sorted(r["properties"]["count"] for r in results) == [1, 3]


def test_sarif_paths_outside_the_root_are_absolute_uris(tmp_path):
    findings = merge.merge(reports_of(tmp_path, race(file="/elsewhere/x y.py")))
    result = sarif.sarif_log(findings, "/repo", "0.1.0")["runs"][0]["results"][0]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "file:///elsewhere/x%20y.py"}


def test_sarif_resolves_stripped_and_relative_paths(tmp_path):
    stripped = read(write(tmp_path / "r.1", [header(strip_path_prefix="/repo/src/"),
                                             race(file="pkg/mod.py"), summary()]))[0]
    relative = read(write(tmp_path / "r.2", [header(cwd="/repo/sub"), race(file="mod.py"),
                                             summary()]))[0]
    uris = [sarif.sarif_log(merge.merge(r), "/repo", "0")["runs"][0]["results"][0]
            ["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in (stripped, relative)]
    assert uris == ["src/pkg/mod.py", "sub/mod.py"]


def test_sarif_fingerprint_is_the_same_from_another_checkout(tmp_path):
    here = merge.merge(reports_of(tmp_path, race(file="/ci/build-1/app.py")))
    there = merge.merge(read(write(tmp_path / "r.2", [header(), race(file="/ci/build-2/app.py"),
                                                      summary()]))[0])
    prints = [sarif.sarif_log(f, root, "0")["runs"][0]["results"][0]["partialFingerprints"]
              for f, root in ((here, "/ci/build-1"), (there, "/ci/build-2"))]
    assert prints[0] == prints[1] and list(prints[0]) == [identity.FINGERPRINT]


def test_merged_json_makes_paths_absolute_when_sources_resolve_them_differently(tmp_path):
    from racewatch.reports import command
    one = read(write(tmp_path / "r.1", [header(1, cwd="/a"), race(file="app.py"), summary()]))[0]
    two = read(write(tmp_path / "r.2", [header(2, cwd="/b"),
                                        race(file="lib.py", location="global 'x' of module 'm'"),
                                        summary()]))[0]
    same = command.merged_records(one, merge.merge(one))
    assert same[0]["cwd"] == "/a" and same[1]["access"]["stack"][0]["file"] == "app.py"
    mixed = command.merged_records(one + two, merge.merge(one + two))
    files = {r["access"]["stack"][0]["file"] for r in mixed if r["type"] == "race"}
    assert files == {"/a/app.py", "/b/lib.py"} and mixed[0]["strip_path_prefix"] == ""
    assert {f["file"] for r in mixed[1:-1] for t in r["threads"] for f in t["created_at"]} \
        == {"/a/app.py", "/b/lib.py"}
    for record in mixed:
        REPORT_VALIDATOR.validate(record)
