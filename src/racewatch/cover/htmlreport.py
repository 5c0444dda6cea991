"""`racewatch cover html`: coverage.py-like pages, with each line's hits as a Go-style heat map."""

from racewatch.pristine import __builtins__  # noqa: F401 - see pristine.py
import hashlib
import html
import math
import os

from racewatch.cover import sources, textreport

# Go's `cover -html` palette: cov0 never ran (red), cov1..cov10 from grey to green.
COLORS = ["rgb(192, 0, 0)"] + [f"rgb({128 - 12 * n}, {128 + 12 * n}, {128 + 3 * n})"
                               for n in range(10)]

CSS = """\
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #222; }
header { background: #f5f5f5; border-bottom: 1px solid #ddd; padding: 12px 24px; }
h1 { font-size: 20px; margin: 0 0 6px; }
main { padding: 12px 24px; }
table.index { border-collapse: collapse; }
table.index th, table.index td { padding: 4px 12px; text-align: right; }
table.index th:first-child, table.index td:first-child { text-align: left; }
table.index tr.total td { font-weight: bold; border-top: 1px solid #aaa; }
table.index tbody tr:hover { background: #eef; }
.legend span { display: inline-block; padding: 2px 6px; color: #fff; font-size: 12px; }
table.source { border-collapse: collapse; font-family: SFMono-Regular, Menlo, Consolas, monospace;
               font-size: 13px; }
table.source td { padding: 0 8px; white-space: pre; vertical-align: top; }
td.n { color: #999; text-align: right; user-select: none; }
td.hits { text-align: right; color: #fff; min-width: 5em; }
tr.run td.src { background: #f4fbf4; }
tr.cov0 td.src { background: #fdeaea; }
""" + "".join(f"tr.cov{n} td.hits, .legend .cov{n} {{ background: {c}; }}\n"
              for n, c in enumerate(COLORS))


def heat(hits, biggest):
    """Go's class number: 0 never ran, else floor(9 ln(hits) / ln(max)) + 1 (8 when max is 1)."""
    if hits <= 0:
        return 0
    norm = 0.8 if biggest <= 1 else math.log(hits) / math.log(biggest)
    return min(10, int(norm * 9) + 1)


def page_name(path):
    stem = os.path.basename(path).replace(".", "_")
    return f"{stem}_{hashlib.blake2b(path.encode(), digest_size=6).hexdigest()}.html"


def write(counts, directory, warn, title="racewatch coverage"):
    """Write index.html, one page per file and style.css into `directory`; the index path."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "style.css"), "w") as f:
        f.write(CSS)
    rows = []
    for path in sorted(counts.files):
        digest, lines = counts.files[path]
        name = page_name(path)
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(_file_page(path, digest, lines, counts.mode, warn, title))
        rows.append((path, name, *textreport.summarize(lines)))
    index = os.path.join(directory, "index.html")
    with open(index, "w", encoding="utf-8") as f:
        f.write(_index_page(rows, counts.mode, title))
    return index


def _head(title):
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title><link rel=\"stylesheet\" href=\"style.css\"></head><body>\n")


def _legend(mode):
    if mode == "set":
        return ('<p class="legend"><span class="cov0">not run</span>'
                '<span class="cov8">run</span></p>')
    swatches = "".join(f'<span class="cov{n}">{label}</span>'
                       for n, label in [(0, "never"), (1, "low")] + [(n, "") for n in range(2, 10)]
                       + [(10, "high")])
    return f'<p class="legend">hits per line: {swatches}</p>'


def _index_page(rows, mode, title):
    out = [_head(title), f"<header><h1>{html.escape(title)}</h1>",
           f"<p>mode <b>{mode}</b>: hits are line events, summed over threads and processes</p>",
           _legend(mode), "</header><main><table class=\"index\"><thead><tr><th>File</th>"
           "<th>Lines</th><th>Missed</th><th>Cover</th><th>Hits</th><th>Max</th></tr>"
           "</thead><tbody>"]
    total = [0, 0, 0, 0]
    for path, name, probed, missed, hits, biggest in rows:
        cover = textreport.percent(probed, missed)
        out.append(f'<tr><td><a href="{name}">{html.escape(textreport.display_name(path))}</a>'
                   f"</td><td>{probed}</td><td>{missed}</td><td>{cover:.0f}%</td>"
                   f"<td>{hits}</td><td>{biggest}</td></tr>")
        total = [total[0] + probed, total[1] + missed, total[2] + hits, max(total[3], biggest)]
    out.append(f'<tr class="total"><td>Total</td><td>{total[0]}</td><td>{total[1]}</td>'
               f"<td>{textreport.percent(total[0], total[1]):.0f}%</td><td>{total[2]}</td>"
               f"<td>{total[3]}</td></tr></tbody></table></main></body></html>\n")
    return "".join(out)


def _file_page(path, digest, lines, mode, warn, title):
    probed, missed, hits, biggest = textreport.summarize(lines)
    text = sources.read(path, digest, warn)
    if text is None:  # gone or changed: the counts alone, line by line
        text = [""] * max(lines, default=0)
    shown = textreport.display_name(path)
    out = [_head(f"{shown} - {title}"), f"<header><h1>{html.escape(shown)}</h1>",
           f"<p>{probed} lines, {missed} never run, "
           f"{textreport.percent(probed, missed):.0f}% covered; {hits} hits, at most {biggest} "
           f"on one line (mode {mode}) &middot; <a href=\"index.html\">index</a></p>",
           _legend(mode), '</header><main><table class="source"><tbody>']
    for number, source in enumerate(text, start=1):
        count = lines.get(number)
        if count is None:
            out.append(f'<tr id="l{number}"><td class="n">{number}</td><td class="hits"></td>'
                       f'<td class="src">{html.escape(source)}</td></tr>')
            continue
        level = heat(count, biggest)
        label = f"{count} hit" + ("" if count == 1 else "s")
        classes = f"cov{level}" + (" run" if count else "")
        out.append(f'<tr id="l{number}" class="{classes}" title="{label}"><td class="n">'
                   f'{number}</td><td class="hits">{count}</td>'
                   f'<td class="src">{html.escape(source)}</td></tr>')
    out.append("</tbody></table></main></body></html>\n")
    return "\n".join(out)
