"""A document as a list of blocks, and its two renderings: Markdown and self-contained HTML.

The report is built once as blocks (heading, paragraph, table, figure, ...) and rendered twice,
so ``report.md`` and ``report.html`` always say the same thing; only the plots travel
differently (PNG files under ``plots/`` for the Markdown, base64 data URIs in the HTML, which
must open on a machine without network). Nothing here knows about audits.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Block:
    kind: Literal["lines", "heading", "para", "bullets", "table", "figure", "code"]
    text: str = ""
    level: int = 2
    items: tuple = ()  # lines / bullets; table rows (header first)
    figure: str = ""  # file name under plots/


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Block:
    return Block("table", items=(tuple(header), *(tuple(r) for r in rows)))


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block]) -> str:
    """Markdown; figures link to ``plots/<file>``."""
    parts = []
    for block in blocks:
        if block.kind == "lines":
            # Consecutive lines as the CLI prints them (`head -n <targets>`, grep), each but the
            # last ending in two spaces: a Markdown hard line break, so a viewer keeps one a line.
            parts.append("  \n".join(block.items) if block.items else "no targets")
        elif block.kind == "heading":
            parts.append(f"{'#' * block.level} {block.text}")
        elif block.kind == "para":
            parts.append(block.text)
        elif block.kind == "bullets":
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif block.kind == "table":
            header, *rows = block.items
            lines = ["| " + " | ".join(map(_md_cell, header)) + " |",
                     "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
            parts.append("\n".join(lines))
        elif block.kind == "figure":
            parts.append(f"![{block.text}]({PLOTS_DIR}/{block.figure})")
        elif block.kind == "code":
            parts.append(f"```json\n{block.text}\n```")
    return "\n\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;max-width:1100px;
margin:24px auto;padding:0 16px;color:#1b1f24;line-height:1.45;background:#fff}
.headline{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:1.15em;background:#eef4fb;
border-left:4px solid #2f6db3;padding:10px 14px;margin:0 0 18px}
.headline div{margin:2px 0}
h1{margin-top:8px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:10px 0 16px;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f3f5f7}tr:nth-child(even) td{background:#fafbfc}
td:not(:first-child){font-variant-numeric:tabular-nums}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:.9em;color:#57606a}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:.85em}
"""


def render_html(blocks: Sequence[Block], plots: dict[str, bytes] | None = None,
                title: str = "locksmith transfer audit") -> str:
    """Self-contained HTML: inline CSS, no script, every string escaped, plots as data URIs."""
    plots = plots or {}
    e = html.escape
    body = []
    for block in blocks:
        if block.kind == "lines":
            body.append('<div class="headline" id="headline">'
                        + "".join(f"<div>{e(line)}</div>" for line in block.items) + "</div>")
        elif block.kind == "heading":
            body.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif block.kind == "para":
            body.append(f"<p>{e(block.text)}</p>")
        elif block.kind == "bullets":
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block.items) + "</ul>")
        elif block.kind == "table":
            header, *rows = block.items
            head = "" if not any(header) else "<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
            body.append("<table>" + head + "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
        elif block.kind == "figure":
            png = plots.get(block.figure)
            img = (f'<img alt="{e(block.text)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                   if png else f"<p>(plot {e(block.figure)} not rendered)</p>")
            body.append(f"<figure>{img}<figcaption>{e(block.text)}</figcaption></figure>")
        elif block.kind == "code":
            body.append(f"<pre>{e(block.text)}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
