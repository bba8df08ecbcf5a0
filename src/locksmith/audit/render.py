"""A document as a list of blocks, and its two renderings: Markdown and self-contained HTML.

The report is built once as blocks (heading, paragraph, table, figure, clips, ...) and rendered
twice, so ``report.md`` and ``report.html`` always say the same thing; only the images travel
differently (files under ``plots/`` and beside the report for the Markdown, base64 data URIs in
the HTML, which must open on a machine without network). Nothing here knows about audits.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PLOTS_DIR = "plots"
MEDIA_TYPES = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


@dataclass(frozen=True)
class Block:
    kind: Literal["lines", "heading", "para", "bullets", "table", "figure", "clips", "code"]
    text: str = ""
    level: int = 2
    items: tuple = ()  # lines / bullets; table rows (header first); clips: (path, caption) pairs
    figure: str = ""  # file name under plots/


def clips(pairs: Sequence[tuple[str, str]]) -> Block:
    """Short animations side by side: (path relative to the report, caption) each."""
    return Block("clips", items=tuple((str(path), str(caption)) for path, caption in pairs))


def _media_type(path: str) -> str:
    return MEDIA_TYPES.get(path[path.rfind("."):].lower(), "application/octet-stream")


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
        elif block.kind == "clips":
            parts.append("\n".join(f"- ![clip]({path}) {_md_cell(caption)}" for path, caption in block.items))
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
.clips{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 16px}
.clips figure{margin:0;width:200px}.clips img{width:160px;height:160px;image-rendering:auto}
.clips figcaption{font-size:.82em}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:.85em}
"""


def render_html(blocks: Sequence[Block], plots: dict[str, bytes] | None = None,
                title: str = "locksmith transfer audit", clip_files: dict[str, bytes] | None = None) -> str:
    """Self-contained HTML: inline CSS, no script, every string escaped, plots and clips as data URIs.

    Args:
        plots: PNG bytes by file name under ``plots/``.
        clip_files: the clips' bytes by their path in a ``clips`` block (a missing one is named instead).
    """
    plots, clip_files = plots or {}, clip_files or {}
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
        elif block.kind == "clips":
            figures = []
            for path, caption in block.items:
                data = clip_files.get(path)
                img = (f'<img alt="{e(caption)}" src="data:{_media_type(path)};base64,'
                       f'{base64.b64encode(data).decode()}">' if data else f"<p>(clip {e(path)} missing)</p>")
                figures.append(f"<figure>{img}<figcaption>{e(caption)}</figcaption></figure>")
            body.append('<div class="clips">' + "".join(figures) + "</div>")
        elif block.kind == "code":
            body.append(f"<pre>{e(block.text)}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
