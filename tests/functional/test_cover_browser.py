"""The HTML heat report of examples/heat.py, as a real browser draws it: the never-run line in
Go's red and the hottest in its green. Skipped where no chromium is installed (Debian:
`apt-get install chromium`)."""

import os
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from tests import helpers

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXAMPLE = os.path.join(helpers.ROOT, "examples", "heat.py")
RED, GREEN = (192, 0, 0), (20, 236, 155)  # Go's cov0 and cov10


def screenshot(page, png):
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    "--window-size=1100,1400", f"--screenshot={png}", f"file://{page}"],
                   capture_output=True, timeout=120, check=True)


def pixels(png):
    """The set of RGB colours of an 8-bit RGB or RGBA PNG (enough of a decoder for this)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and color in (2, 6)
    step = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * step
    previous = bytearray(stride)
    seen = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                best = min((abs(guess - left), 0, left), (abs(guess - up), 1, up),
                           (abs(guess - corner), 2, corner))[2]
                line[i] = (line[i] + best) & 255
        seen.update(tuple(line[i:i + 3]) for i in range(0, stride, step))
        previous = line
    return seen


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium to draw the page")
def test_heat_map_in_a_browser(tmp_path):
    proc = helpers.run(helpers.racewatch_args("--cover=atomic", "--no-race", EXAMPLE),
                       cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = helpers.run([sys.executable, "-m", "racewatch", "cover", "html", "-d", "html"],
                         cwd=str(tmp_path))
    assert report.returncode == 0, report.stderr
    (page,) = (tmp_path / "html").glob("heat_py_*.html")
    png = tmp_path / "heat.png"
    screenshot(page, png)
    colours = pixels(png)
    assert RED in colours and GREEN in colours
