"""The audit report: ``audit.json`` → ``report.md`` and a self-contained ``report.html``.

Both documents are rendered from one list of blocks (heading, paragraph, table, figure, ...)
so that the Markdown and the HTML always say the same thing; only the plots differ in how they
travel (PNG files beside ``report.md``, base64 data URIs inside ``report.html``, which must open
on a machine without network). How to read the numbers is in ``docs/report.md``.

Layout written by :func:`write_report`::

    out_dir/report.md
    out_dir/report.html
    out_dir/plots/<n>-<target>-curves.png   success (or error) vs demos, one per target
    out_dir/plots/<n>-<target>-slices.png   the same per evaluation slice
    out_dir/plots/gains.png                 adaptation and wall-clock gains with intervals
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure  # the Agg canvas, no pyplot: no global backend state
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, ScalarFormatter

from locksmith.atomic import write_file_atomic, write_json_atomic

log = logging.getLogger(__name__)

OFFLINE_NOTE = "no simulator: offline action error, lower is better"
PLOTS_DIR = "plots"
GAINS_PLOT = "gains.png"
_LINESTYLE_BY_KIND = {"adapted": "-", "scratch": "--", "peer": "-."}
_KIND_WORDS = {"adapted": "adapted from the prior", "scratch": "from scratch",
               "peer": "peer baseline, from scratch"}


# --- atomic files ---------------------------------------------------------------------------

def write_audit_json(audit: dict, path: Path) -> None:
    """Write ``audit.json`` atomically (indented, UTF-8, key order kept)."""
    write_json_atomic(path, audit)


# --- formatting -----------------------------------------------------------------------------

def _num(x: float | int | None) -> str:
    """A short number: 3 significant digits, no trailing zeros; ``n/a`` for a missing one."""
    if x is None:
        return "n/a"
    if isinstance(x, int) or abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _metric(x: float | None, target: dict) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f}" if target.get("metric", "success") == "success" else f"{x:.3g}"


def _interval(ci: list | None, fmt=_num) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def format_gain(gain: dict | None) -> str:
    """The gain as the headline writes it: ``8.2x [6.1, 10.4]``, ``> 12x``, ``n/a (why)``.

    The audit's own ``text`` wins when present, so the report and the CLI summary print the
    same string; the numbers are formatted only when it is missing.
    """
    gain = gain or {}
    if gain.get("text"):
        return gain["text"]
    value = gain.get("value")
    if value is None:
        return "n/a (undefined)"
    if gain.get("is_lower_bound"):
        return f"> {_num(value)}x"
    if gain.get("is_upper_bound"):
        return f"< {_num(value)}x"
    interval = _interval(gain.get("ci95"))
    return f"{_num(value)}x {interval}".rstrip()


def headline_lines(audit: dict) -> list[str]:
    """One ``<target>: adaptation_gain=<gain>`` line per target, in the audit's order."""
    return [f"{name}: adaptation_gain={format_gain(t.get('adaptation_gain'))}"
            for name, t in (audit.get("targets") or {}).items()]


def format_demos(dtt: dict | None, budgets: list) -> str:
    """Demos to threshold: ``23.4``, ``≤ 5`` (already at the smallest budget), ``> 50``."""
    dtt = dtt or {}
    status, demos = dtt.get("status"), dtt.get("demos")
    if status == "at_or_below_min":
        return f"≤ {_num(demos if demos is not None else (min(budgets) if budgets else None))}"
    if status == "not_reached":
        bound = dtt.get("lower_bound")
        return f"> {_num(bound if bound is not None else (max(budgets) if budgets else None))}"
    return _num(demos)


def goal_check(gain: dict | None, point_goal: float | None,
               lower_goal: float | None = None) -> str:
    """``met`` / ``not met`` / ``undetermined`` for a gain against a goal.

    The point estimate must reach ``point_goal`` and, when given, the interval's lower end must
    reach ``lower_goal``. A lower bound (the baseline never reached the threshold) can only prove
    a goal met; an upper bound (the adapted arm never did) can only prove it missed.
    """
    gain = gain or {}
    value = gain.get("value")
    if point_goal is None and lower_goal is None:
        return "undetermined"
    if value is None:
        return "undetermined"
    ci = gain.get("ci95") or [None, None]
    verdicts = []
    for goal, estimate in ((point_goal, value), (lower_goal, ci[0] if ci[0] is not None else
                                                 (value if gain.get("is_lower_bound") else None))):
        if goal is None:
            continue
        if estimate is None:
            verdicts.append("undetermined")
        elif gain.get("is_lower_bound"):
            verdicts.append("met" if estimate >= goal else "undetermined")
        elif gain.get("is_upper_bound"):
            verdicts.append("not met" if value < goal else "undetermined")
        else:
            verdicts.append("met" if estimate >= goal else "not met")
    if "not met" in verdicts:
        return "not met"
    return "met" if all(v == "met" for v in verdicts) else "undetermined"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "target"


def plot_names(audit: dict) -> dict[str, dict[str, str]]:
    """File names (under ``plots/``) of each target's figures: ``{target: {"curves", "slices"}}``."""
    return {name: {"curves": f"{i}-{_safe(name)}-curves.png", "slices": f"{i}-{_safe(name)}-slices.png"}
            for i, name in enumerate(audit.get("targets") or {}, start=1)}


# --- the document, as blocks ----------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    kind: str  # heading | para | lines | table | bullets | figure | code
    text: str = ""
    level: int = 2
    items: tuple = ()  # lines / bullets; table rows (header first)
    figure: str = ""  # file name under plots/


def _table(header: list[str], rows: list[list[str]]) -> Block:
    return Block("table", items=(tuple(header), *(tuple(r) for r in rows)))


HOW_TO_READ = (
    "How to read this: for every target robot, each arm is trained on N demonstrations for "
    "each budget N and seed, then evaluated. Demos to threshold is the number of demonstrations "
    "at which an arm's mean curve reaches the threshold ('> 50' means it never did within the "
    "largest budget, '≤ 5' that it already had at the smallest). The adaptation gain is the "
    "baseline's demos to threshold divided by the adapted arm's, with a bootstrap 95% interval; "
    "'> 12x' is a lower bound: the baseline never reached the threshold. The baseline is the "
    "stronger of the from-scratch arms. Negative transfer marks budgets where the adapted arm "
    "did worse than the baseline. Details: docs/report.md.")


def _blocks(audit: dict) -> list[Block]:
    targets = audit.get("targets") or {}
    names = plot_names(audit)
    out = [Block("lines", items=tuple(headline_lines(audit))),
           Block("heading", "Transfer audit", level=1), Block("para", HOW_TO_READ)]
    if audit.get("quick"):
        out.append(Block("para", "Quick mode: reduced budgets and seeds; a smoke test, not a measurement."))
    out += _run_blocks(audit)
    if targets:
        out += [Block("heading", "Gains"), Block("figure", "Adaptation and wall-clock gains "
                                                 "with 95% intervals (arrows: bounds)", figure=GAINS_PLOT)]
    out += _goal_blocks(audit)
    for name, target in targets.items():
        out += _target_blocks(name, target, names[name])
    out += _reproducibility_blocks(audit)
    return out


def _run_blocks(audit: dict) -> list[Block]:
    kinds: dict[str, str] = {}
    for target in (audit.get("targets") or {}).values():
        for arm, data in (target.get("arms") or {}).items():
            kinds.setdefault(arm, (data or {}).get("kind", ""))
    arms = [f"{a} ({_KIND_WORDS.get(kinds.get(a, ''), kinds.get(a) or 'kind unknown')})"
            for a in audit.get("arms_ran") or list(kinds)]
    prior = audit.get("prior") or {}
    rows = [["arms ran", ", ".join(arms) or "none"],
            ["prior checkpoint", str(prior.get("checkpoint") or "none")],
            ["prior robots", ", ".join(prior.get("robots") or []) or "n/a"],
            ["pretraining", f"{_num(prior.get('pretrain_seconds'))} s"
             + (" (reused from cache)" if prior.get("cached") else "")],
            ["plan file", str(audit.get("plan_file") or "none (embedded default)")]]
    return [Block("heading", "Run"), _table(["", ""], rows)]


def _goal_blocks(audit: dict) -> list[Block]:
    goal = audit.get("goal")
    if not goal:
        return []
    demos_goal, lower_goal, wall_goal = (goal.get("demos_gain"), goal.get("demos_gain_lower"),
                                         goal.get("wallclock_gain"))
    rows, met = [], 0
    for name, target in (audit.get("targets") or {}).items():
        demos = goal_check(target.get("adaptation_gain"), demos_goal, lower_goal)
        wall = goal_check(target.get("wallclock_gain"), wall_goal)
        verdict = "met" if demos == wall == "met" else ("not met" if "not met" in (demos, wall)
                                                         else "undetermined")
        if isinstance(target.get("goal_met"), bool):  # the audit's own verdict, when it gave one
            verdict = "met" if target["goal_met"] else "not met"
        met += verdict == "met"
        rows.append([name, format_gain(target.get("adaptation_gain")), demos,
                     format_gain(target.get("wallclock_gain")), wall, verdict])
    rule = (f"Goal: adaptation gain ≥ {_num(demos_goal)}x with the interval's lower end "
            f"≥ {_num(lower_goal)}x, and wall-clock gain ≥ {_num(wall_goal)}x. "
            f"Met on {met} of {len(rows)} targets.")
    return [Block("heading", "Goal"), Block("para", rule),
            _table(["target", "adaptation gain", "demos goal", "wall-clock gain", "wall-clock goal",
                    "verdict"], rows)]


def _budgets(target: dict) -> list:
    found = set(target.get("budgets") or [])
    for arm in (target.get("arms") or {}).values():
        found.update(((arm or {}).get("curve") or {}).get("budgets") or [])
    return sorted(found)


def _at(values: list | None, budgets: list | None, budget) -> object:
    """The entry of ``values`` that belongs to ``budget`` (None when absent)."""
    if not values or not budgets or budget not in budgets:
        return None
    i = budgets.index(budget)
    return values[i] if i < len(values) else None


def _target_blocks(name: str, target: dict, plots: dict[str, str]) -> list[Block]:
    arms = target.get("arms") or {}
    budgets = _budgets(target)
    better = "higher" if target.get("higher_is_better", True) else "lower"
    if target.get("source") == "dataset" or target.get("metric") == "offline_action_error":
        metric = OFFLINE_NOTE + (f" (dataset {target['dataset']})" if target.get("dataset") else "")
    else:
        metric = f"closed-loop success rate in simulation, {better} is better"
    out = [Block("heading", f"{name}: {target.get('robot', '?')}, {target.get('task', '?')}"),
           Block("para", f"Metric: {metric}. Threshold {_num(target.get('threshold'))}"
                 + (f" ({target['threshold_rule']})" if target.get("threshold_rule") else "")
                 + f". Seeds {', '.join(map(str, target.get('seeds') or [])) or 'n/a'}.")]
    out.append(Block("para", f"Adaptation gain ({target.get('adapted_arm', '?')} vs "
                     f"{target.get('baseline_arm', '?')}): {format_gain(target.get('adaptation_gain'))}."
                     f" Wall-clock gain: {format_gain(target.get('wallclock_gain'))}."))
    out.append(Block("para", _baseline_sentence(target, budgets)))
    others = target.get("other_gains") or {}
    if len(others) > 1:
        out.append(Block("bullets", items=tuple(f"{pair.replace('_vs_', ' vs ')}: {format_gain(g)}"
                                                for pair, g in others.items())))

    rows = []
    for arm, data in arms.items():
        curve = (data or {}).get("curve") or {}
        cells = []
        for b in budgets:
            mean = _at(curve.get("mean"), curve.get("budgets"), b)
            ci = _at(curve.get("ci95"), curve.get("budgets"), b)
            cells.append(f"{_metric(mean, target)} {_interval(ci, lambda x: _metric(x, target))}".strip())
        rows.append([arm, *cells])
    out += [Block("heading", f"Mean {'success' if better == 'higher' else 'error'} [95% CI] "
                  "by demonstrations", level=3), _table(["arm", *map(str, budgets)], rows)]

    rows = []
    for arm, data in arms.items():
        data = data or {}
        dtt = data.get("demos_to_threshold") or {}
        wall = data.get("wallclock_seconds") or {}
        frames = data.get("frames") or {}
        rows.append([arm, data.get("kind", "?"), format_demos(dtt, budgets),
                     (_interval(dtt.get("ci95")) if dtt.get("status") == "reached" else "") or "n/a",
                     _num(data.get("trainable_parameters")),
                     *(_wall_cell(wall.get(str(b)), frames.get(str(b))) for b in budgets)])
    out += [Block("heading", "Demos to threshold, wall-clock (s) / training frames by budget", level=3),
            _table(["arm", "kind", "demos to threshold", "95% CI", "trainable params",
                    *map(str, budgets)], rows),
            Block("figure", f"{name}: metric vs demonstrations", figure=plots["curves"])]
    if any((data or {}).get("per_slice") for data in arms.values()):
        out.append(Block("figure", f"{name}: per evaluation slice", figure=plots["slices"]))

    flags = target.get("negative_transfer") or []
    items = [f"{f.get('arm')} worse than {f.get('versus') or target.get('baseline_arm', 'scratch')} "
             f"at {f.get('budget')} "
             f"demos: {_metric(f.get('adapted'), target)} vs {_metric(f.get('scratch'), target)} "
             f"({'significant' if f.get('significant') else 'not significant'})" for f in flags]
    out += [Block("heading", "Negative transfer", level=3),
            Block("bullets", items=tuple(items)) if items else Block("para", "None flagged.")]

    kinds = sorted({k for d in arms.values() for k in ((d or {}).get("shield_interventions") or {})})
    out.append(Block("heading", "Safety-shield interventions (all evaluation episodes)", level=3))
    if kinds:
        rows = [[arm, *(_num(((d or {}).get("shield_interventions") or {}).get(k, 0)) for k in kinds),
                 _num(sum(((d or {}).get("shield_interventions") or {}).values()))]
                for arm, d in arms.items()]
        out.append(_table(["arm", *kinds, "total"], rows))
    else:
        out.append(Block("para", "None recorded."))
    # The metric line above already says what an offline target measures.
    notes = [n for n in target.get("notes") or [] if not str(n).startswith("no simulator:")]
    if notes:
        out += [Block("heading", "Notes", level=3), Block("bullets", items=tuple(map(str, notes)))]
    return out


def _wall_cell(seconds: float | None, frames: int | None) -> str:
    if seconds is None and frames is None:
        return "n/a"
    return f"{_num(seconds)} s / {_num(frames)}"


def _baseline_sentence(target: dict, budgets: list) -> str:
    arms = target.get("arms") or {}
    baseline = target.get("baseline_arm")
    scratch = [a for a, d in arms.items() if (d or {}).get("kind") != "adapted"]
    if not scratch:
        return "No from-scratch arm ran: no gain can be measured."
    if len(scratch) == 1:
        return f"Baseline: {baseline or scratch[0]}, the only from-scratch arm."
    listed = ", ".join(f"{a} ({format_demos(arms[a].get('demos_to_threshold'), budgets)} demos)"
                       for a in scratch)
    why = {"fewer_demos": "it reached the threshold with fewer demos",
           "area_under_curve": "no winner on demos; the better mean curve over log-demos decided",
           "tie": "a full tie, broken alphabetically"}.get((target.get("baseline_choice") or {}).get("reason"))
    return (f"Baseline: {baseline}, the stronger from-scratch arm of {listed}"
            + (f" ({why})" if why else "") + "; gains are measured against it.")


def _reproducibility_blocks(audit: dict) -> list[Block]:
    rep = audit.get("reproducibility") or {}
    rows = [["command", str(rep.get("command") or "n/a")],
            ["seeds", ", ".join(map(str, rep.get("seeds") or [])) or "n/a"],
            ["versions", ", ".join(f"{k} {v}" for k, v in (rep.get("versions") or {}).items()) or "n/a"],
            ["machine", ", ".join(f"{k} {v}" for k, v in (rep.get("machine") or {}).items()) or "n/a"],
            ["started", str(rep.get("started") or "n/a")],
            ["finished", str(rep.get("finished") or "n/a")],
            ["seconds", _num(rep.get("seconds"))],
            ["quick mode", "yes" if audit.get("quick") else "no"]]
    rows += [[f"dataset {k}", str(v)] for k, v in (rep.get("dataset_fingerprints") or {}).items()]
    out = [Block("heading", "Reproducibility"), _table(["", ""], rows)]
    if audit.get("plan"):
        out += [Block("heading", "Plan", level=3),
                Block("code", json.dumps(audit["plan"], indent=2, ensure_ascii=False))]
    return out


# --- Markdown and HTML from the blocks ------------------------------------------------------

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(audit: dict) -> str:
    """``report.md``: the headline lines first, then the sections; plots linked under ``plots/``."""
    parts = []
    for block in _blocks(audit):
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


def render_html(audit: dict, plots: dict[str, bytes] | None = None) -> str:
    """``report.html``, self-contained: inline CSS, no script, plots as base64 data URIs."""
    plots = plots or {}
    e = html.escape
    body = []
    for block in _blocks(audit):
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
            f"<title>locksmith transfer audit</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- plots ----------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _arm_colors(audit: dict) -> dict[str, str]:
    order = list(audit.get("arms_ran") or [])
    for target in (audit.get("targets") or {}).values():
        order += [a for a in target.get("arms") or {} if a not in order]
    palette = [f"C{i}" for i in range(10)]
    return {arm: palette[i % 10] for i, arm in enumerate(order)}


def _log_x(ax, budgets: list, marks: list | None = None) -> None:
    """A log demonstrations axis ticked at the budgets, wide enough for ``marks`` and arrows."""
    ax.set_xscale("log")
    if budgets:
        span = [x for x in [*budgets, *(marks or [])] if x is not None and x > 0]
        ax.set_xlim(min(span) / 1.6, max(span) * 1.8)  # room for the "not reached" arrows
        ax.xaxis.set_major_locator(FixedLocator(budgets))
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("demonstrations (log scale)")
    ax.grid(alpha=0.3)


def _draw_curve(ax, xs, mean, ci, color, style, label) -> None:
    """One arm's mean with its CI as a band (or error bars where a band cannot be drawn)."""
    points = [(x, y, c) for x, y, c in zip(xs, mean, ci or [None] * len(xs)) if y is not None]
    if not points:
        return
    ax.plot([p[0] for p in points], [p[1] for p in points], style, color=color, marker="o", lw=2,
            label=label)
    band = [(x, c[0], c[1]) for x, _, c in points if c and c[0] is not None and c[1] is not None]
    if len(band) >= 2:
        ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                        color=color, alpha=0.15, lw=0)
    elif band:
        x, lo, hi = band[0]
        y = next(p[1] for p in points if p[0] == x)
        ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], color=color, capsize=4, lw=1.5)


def _curves_png(name: str, target: dict, colors: dict[str, str]) -> bytes:
    budgets, threshold = _budgets(target), target.get("threshold")
    fig = Figure(figsize=(9, 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    marks = []
    for arm, data in (target.get("arms") or {}).items():
        data = data or {}
        curve, color = data.get("curve") or {}, colors.get(arm, "C9")
        style = _LINESTYLE_BY_KIND.get(data.get("kind"), "-")
        _draw_curve(ax, curve.get("budgets") or [], curve.get("mean") or [], curve.get("ci95"),
                    color, style, f"{arm} ({data.get('kind', '?')})")
        dtt = data.get("demos_to_threshold") or {}
        if threshold is None or not budgets:
            continue
        if dtt.get("status") == "reached" and dtt.get("demos") is not None:
            d, ci = dtt["demos"], dtt.get("ci95")
            xerr = [[d - ci[0]], [ci[1] - d]] if ci and None not in ci else None
            marks += [d, *(ci if xerr else [])]
            ax.errorbar([d], [threshold], xerr=xerr, color=color, marker="D", ms=9, mec="black",
                        capsize=5, lw=2, zorder=5)
        elif dtt.get("status") in ("not_reached", "at_or_below_min"):
            right = dtt.get("status") == "not_reached"
            start = (dtt.get("lower_bound") or max(budgets)) if right else (dtt.get("demos") or min(budgets))
            ax.annotate("", xy=(start * (1.55 if right else 1 / 1.5), threshold), xytext=(start, threshold),
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2.5}, zorder=5)
    if threshold is not None:
        ax.axhline(threshold, color="0.25", ls=":", lw=1.5)
    _log_x(ax, budgets, marks)
    offline = target.get("metric") == "offline_action_error"
    ax.set_ylabel("offline action error (lower is better)" if offline else "success rate")
    if not offline:
        ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{name}: {target.get('robot', '?')} {target.get('task', '?')}")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.25", ls=":", label=f"threshold {_num(threshold)}"),
                Line2D([], [], color="0.4", marker="D", ls="", mec="black", label="demos to threshold (95% CI)"),
                Line2D([], [], color="0.4", marker=">", ls="", label="not reached (> max) / already at min (≤)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    return _png(fig)


def _slices_png(name: str, target: dict, colors: dict[str, str]) -> bytes | None:
    arms = target.get("arms") or {}
    measured = {s for data in arms.values() for s in (data or {}).get("per_slice") or {}}
    slices = [s for s in target.get("slices") or [] if s in measured]
    slices += sorted(measured - set(slices))
    if not slices:
        return None
    columns = min(len(slices), 3)
    rows = -(-len(slices) // columns)
    fig = Figure(figsize=(3.6 * columns + 2.2, 3.1 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    budgets, threshold = _budgets(target), target.get("threshold")
    for ax, slice_name in zip(axes, slices):
        for arm, data in arms.items():
            curve = ((data or {}).get("per_slice") or {}).get(slice_name) or {}
            _draw_curve(ax, curve.get("budgets") or [], curve.get("mean") or [], curve.get("ci95"),
                        colors.get(arm, "C9"), _LINESTYLE_BY_KIND.get((data or {}).get("kind"), "-"), arm)
        if threshold is not None:
            ax.axhline(threshold, color="0.25", ls=":", lw=1.5)
        _log_x(ax, budgets)
        ax.set_title(slice_name)
    for ax in axes[len(slices):]:
        ax.set_visible(False)
    if target.get("metric") != "offline_action_error":
        axes[0].set_ylim(-0.03, 1.03)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", frameon=False)
    fig.suptitle(f"{name}: per evaluation slice")
    return _png(fig)


def _gains_png(audit: dict) -> bytes:
    """One row per target: the adaptation and wall-clock gains, each with its interval."""
    targets = list((audit.get("targets") or {}).items())
    goal = audit.get("goal") or {}
    fig = Figure(figsize=(9, 1.5 + 0.95 * len(targets)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    span = [1.0] + [v for _, t in targets for key in ("adaptation_gain", "wallclock_gain")
                    for v in [(t.get(key) or {}).get("value"), *((t.get(key) or {}).get("ci95") or [])]
                    if v is not None and v > 0]
    span += [v for v in goal.values() if isinstance(v, (int, float)) and v > 0]
    low, high = min(span) / 4, max(span) * 12  # margins for the bounds' arrows (x3) and the labels
    ax.set_xlim(low, high)
    rows = (("adaptation_gain", -0.2, "C0", "o"), ("wallclock_gain", 0.2, "C1", "s"))
    for row, (name, target) in enumerate(targets):
        for key, offset, color, marker in rows:
            gain, y = target.get(key) or {}, row + offset
            value, ci = gain.get("value"), gain.get("ci95")
            if value is None or value <= 0:
                ax.text(low * 1.15, y, "n/a", va="center", ha="left", color=color, fontsize=9)
                continue
            bound = gain.get("is_lower_bound") or gain.get("is_upper_bound")
            label_x = value
            if bound:  # an open interval: the arrow points to the side the true gain lies on
                end = value * 3 if gain.get("is_lower_bound") else value / 3
                ax.annotate("", xy=(end, y), xytext=(value, y),
                            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2})
                label_x = max(end, value)
            elif ci and None not in ci:
                ax.errorbar([value], [y], xerr=[[value - ci[0]], [ci[1] - value]], color=color,
                            capsize=5, lw=2)
                label_x = ci[1]
            ax.plot([value], [y], marker, color=color, ms=8, mfc="white" if bound else color, mew=2)
            short = format_gain(gain).split(" (")[0]  # the audit's note in brackets is in the tables
            ax.text(label_x * 1.15, y, short, ha="left", va="center", fontsize=9, color=color)
    ax.axvline(1.0, color="0.3", lw=1)
    for goal_key, color in (("demos_gain", "C0"), ("wallclock_gain", "C1")):
        if goal.get(goal_key):
            ax.axvline(goal[goal_key], color=color, ls="--", lw=1)
    ax.set_yticks(range(len(targets)), [n for n, _ in targets])
    ax.set_ylim(len(targets) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("gain (x, log scale; 1 = no gain)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(handles=[Line2D([], [], color="C0", marker="o", label="adaptation gain (demos)"),
                       Line2D([], [], color="C1", marker="s", label="wall-clock gain"),
                       Line2D([], [], color="0.4", marker="o", mfc="white", ls="", label="bound (arrow: open side)"),
                       Line2D([], [], color="0.4", ls="--", label="goal")],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    ax.set_title("Gains with 95% intervals")
    return _png(fig)


def render_plots(audit: dict) -> dict[str, bytes]:
    """Every plot the report embeds, as PNG bytes keyed by file name."""
    colors, plots = _arm_colors(audit), {}
    targets = audit.get("targets") or {}
    if targets:
        plots[GAINS_PLOT] = _gains_png(audit)
    for name, files in plot_names(audit).items():
        plots[files["curves"]] = _curves_png(name, targets[name], colors)
        slices = _slices_png(name, targets[name], colors)
        if slices is not None:
            plots[files["slices"]] = slices
    return plots


def write_report(audit: dict, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and the PNG plots into ``out_dir``, each atomically.

    Returns:
        ``{"markdown": path, "html": path, <plot file name>: path, ...}``.
    """
    out_dir = Path(out_dir)
    plots = render_plots(audit)
    written = {}
    for file_name, png in plots.items():
        written[file_name] = out_dir / PLOTS_DIR / file_name
        write_file_atomic(written[file_name], png)
    written["markdown"] = out_dir / "report.md"
    write_file_atomic(written["markdown"], render_markdown(audit).encode())
    written["html"] = out_dir / "report.html"
    write_file_atomic(written["html"], render_html(audit, plots).encode())
    log.info("report written to %s (%d plots)", out_dir, len(plots))
    return written
