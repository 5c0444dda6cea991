"""`racewatch cover combine | report | html | lcov | erase` over counts files."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests import helpers
from tests.cover_helpers import counts_files, cover_run, coverage_files, line_of, load

THREADS = os.path.join(helpers.PROGRAMS, "cover_threads.py")
SPIN = line_of(THREADS, "# the counted line")
REAL = os.path.realpath(THREADS)


def cover(directory, *args):
    return helpers.run([sys.executable, "-m", "racewatch", "cover", *args], cwd=str(directory))


def two_runs(tmp_path):
    """Counts of two runs of 2 threads x 10 (20 hits each on the spin line)."""
    for _ in range(2):
        assert cover_run(tmp_path, THREADS, "10", "2").returncode == 0
    assert len(counts_files(tmp_path)) == 2


def spin_hits(path):
    return load(path)["files"][REAL]["lines"][str(SPIN)]


def test_combine_sums_and_deletes_its_inputs_after_writing(tmp_path):
    two_runs(tmp_path)
    proc = cover(tmp_path, "combine")
    assert proc.returncode == 0 and "combined 2 counts files" in proc.stderr, proc.stderr
    assert counts_files(tmp_path) == []
    assert spin_hits(tmp_path / ".racewatch-cover.json") == 40
    assert load(tmp_path / ".racewatch-cover.json")["combined_from"] == 2


def test_combine_keep_and_append(tmp_path):
    two_runs(tmp_path)
    assert cover(tmp_path, "combine", "--keep").returncode == 0
    assert len(counts_files(tmp_path)) == 2
    report = cover(tmp_path, "report")
    assert report.returncode == 0 and "--append" not in report.stderr, report.stderr
    # the kept files are in the combined file already: appending them again adds nothing
    assert cover(tmp_path, "combine", "--append").returncode != 0
    assert spin_hits(tmp_path / ".racewatch-cover.json") == 40
    assert cover_run(tmp_path, THREADS, "10", "2").returncode == 0  # a new run is added
    report = cover(tmp_path, "report")
    assert "1 counts file(s) not in .racewatch-cover.json" in report.stderr, report.stderr
    assert cover(tmp_path, "combine", "--append").returncode == 0
    assert spin_hits(tmp_path / ".racewatch-cover.json") == 60
    assert load(tmp_path / ".racewatch-cover.json")["combined_from"] == 3


def test_unreadable_files_are_skipped_by_name_and_kept(tmp_path):
    two_runs(tmp_path)
    bad = tmp_path / ".racewatch-cover.host.pid1.Xbadbadx.json"
    bad.write_text('{"format": "racewatch-cover/1", "mode": "atom')  # cut short
    alien = tmp_path / ".racewatch-cover.host.pid2.Xalienx.json"
    alien.write_text("[1, 2, 3]")
    proc = cover(tmp_path, "combine")
    assert proc.returncode == 0, proc.stderr
    assert f"skipping {bad.name}" in proc.stderr and f"skipping {alien.name}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(counts_files(tmp_path)) == sorted([str(bad), str(alien)])  # left in place
    assert spin_hits(tmp_path / ".racewatch-cover.json") == 40


def test_different_sources_of_one_file_are_refused(tmp_path):
    two_runs(tmp_path)
    first = counts_files(tmp_path)[0]
    data = load(first)
    data["files"][REAL]["sha256"] = "0" * 64
    with open(first, "w") as f:
        json.dump(data, f)
    proc = cover(tmp_path, "combine")
    assert proc.returncode == 1
    assert "two different sources" in proc.stderr and os.path.basename(first) in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / ".racewatch-cover.json").exists()
    assert len(counts_files(tmp_path)) == 2  # nothing deleted


def test_modes_are_not_mixed(tmp_path):
    assert cover_run(tmp_path, "--cover=set", "--no-race", THREADS, "10", "2").returncode == 0
    assert cover_run(tmp_path, "--cover=atomic", THREADS, "10", "2").returncode == 0
    proc = cover(tmp_path, "combine")
    assert proc.returncode == 1 and "mode" in proc.stderr
    assert len(counts_files(tmp_path)) == 2


def test_nothing_to_combine(tmp_path):
    proc = cover(tmp_path, "combine")
    assert proc.returncode == 1 and proc.stderr == "racewatch: no counts files to combine\n"


def test_concurrent_combines_lose_nothing(tmp_path):
    two_runs(tmp_path)
    more = tmp_path / "more"
    more.mkdir()
    two_runs(more)
    for path in counts_files(more):
        shutil.move(path, tmp_path)
    combines = [subprocess.Popen([sys.executable, "-m", "racewatch", "cover", "combine",
                                  "--append", path], cwd=str(tmp_path),
                                 env=helpers.clean_env(), stderr=subprocess.PIPE)
                for path in counts_files(tmp_path)]
    for proc in combines:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    assert counts_files(tmp_path) == []
    assert spin_hits(tmp_path / ".racewatch-cover.json") == 80


def test_report_per_file_and_per_line(tmp_path):
    two_runs(tmp_path)
    proc = cover(tmp_path, "report", "-m")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "cover_threads.py" in line)
    per_line = {}
    for path in counts_files(tmp_path):
        for line, hits in load(path)["files"][REAL]["lines"].items():
            per_line[line] = per_line.get(line, 0) + hits
    name, probed, missed, cover_percent, hits, most = row.split()[:6]
    assert (int(probed), int(missed)) == (len(per_line), list(per_line.values()).count(0))
    assert (int(hits), int(most)) == (sum(per_line.values()), max(per_line.values()))
    assert "(mode: atomic;" in proc.stdout
    lines = cover(tmp_path, "report", "--lines").stdout.splitlines()
    spin = next(line for line in lines if line.strip().startswith(f"{SPIN} "))
    assert spin.split()[:2] == [str(SPIN), "40"] and "# the counted line" in spin


def test_report_warns_when_the_source_changed(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("x = 1\ny = 2\n")
    assert cover_run(tmp_path, "prog.py").returncode == 0
    program.write_text("x = 1\ny = 3\n")
    proc = cover(tmp_path, "report", "--lines")
    assert proc.returncode == 0 and "source changed since it was measured" in proc.stderr
    assert "y = 3" not in proc.stdout


def test_html_heat_map(tmp_path):
    two_runs(tmp_path)
    proc = cover(tmp_path, "html", "-d", "out")
    assert proc.returncode == 0, proc.stderr
    index = (tmp_path / "out" / "index.html").read_text()
    assert "cover_threads.py" in index
    page = next(p for p in (tmp_path / "out").glob("cover_threads_py_*.html"))
    text = page.read_text()
    # Go's classes: floor(9 ln(40) / ln(44)) + 1 = 9 (the loop header ran 44 times, the most)
    assert f'id="l{SPIN}" class="cov9 run" title="40 hits"' in text
    loop = line_of(THREADS, "for _ in range(n)")
    assert f'id="l{loop}" class="cov10 run" title="44 hits"' in text
    assert "hits per line:" in text and (tmp_path / "out" / "style.css").exists()


def test_lcov_has_real_counts(tmp_path):
    two_runs(tmp_path)
    proc = cover(tmp_path, "lcov", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert f"SF:{REAL}\n" in proc.stdout
    assert f"DA:{SPIN},40\n" in proc.stdout and proc.stdout.endswith("end_of_record\n")


def test_erase(tmp_path):
    two_runs(tmp_path)
    assert cover(tmp_path, "combine", "--keep").returncode == 0
    assert len(coverage_files(tmp_path)) == 2  # the coverage.py data files of the two runs
    assert cover(tmp_path, "erase").returncode == 0
    assert counts_files(tmp_path) == [] and not (tmp_path / ".racewatch-cover.json").exists()
    assert coverage_files(tmp_path) == []  # a later `coverage combine` would merge them


@pytest.mark.parametrize("command", ["report", "html", "lcov"])
def test_reports_without_data_say_so(tmp_path, command):
    proc = cover(tmp_path, command)
    assert proc.returncode == 1 and proc.stderr.startswith("racewatch: no coverage counts")
