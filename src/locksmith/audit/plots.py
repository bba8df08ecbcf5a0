"""The audit's plots, as PNG bytes, from a validated `AuditResult`.

    plots/<n>-<target>-curves.png   the metric vs demos per arm, its interval, the crossings
    plots/<n>-<target>-slices.png   the same on each evaluation slice (closed-loop targets)
    plots/gains.png                 the adaptation and wall-clock gains with their intervals

Matplotlib's object API on the Agg canvas (no pyplot: no global backend state).
"""

from __future__ import annotations

import io
import re

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, ScalarFormatter

from locksmith.audit.estimates import CurveRecord, GainRecord
from locksmith.audit.schema import AuditResult, TargetResult

GAINS_PLOT = "gains.png"
LINESTYLE_BY_KIND = {"adapted": "-", "scratch": "--", "peer": "-."}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "target"


def plot_names(audit: AuditResult) -> dict[str, dict[str, str]]:
    """File names (under ``plots/``) of each target's figures: ``{target: {"curves", "slices"}}``."""
    return {name: {"curves": f"{i}-{_safe(name)}-curves.png", "slices": f"{i}-{_safe(name)}-slices.png"}
            for i, name in enumerate(audit.targets, start=1)}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def arm_colors(audit: AuditResult) -> dict[str, str]:
    """One colour per arm, the same in every plot."""
    return {arm: f"C{i % 10}" for i, arm in enumerate(audit.arms_ran)}


def _log_x(ax, budgets: tuple[int, ...], marks: list[float] | None = None) -> None:
    """A log demonstrations axis ticked at the budgets, wide enough for ``marks`` and arrows."""
    ax.set_xscale("log")
    span = [x for x in [*budgets, *(marks or [])] if x > 0]
    ax.set_xlim(min(span) / 1.6, max(span) * 1.8)  # room for the "not reached" arrows
    ax.xaxis.set_major_locator(FixedLocator(budgets))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("demonstrations (log scale)")
    ax.grid(alpha=0.3)


def _draw_curve(ax, curve: CurveRecord, color: str, style: str, label: str) -> None:
    """One arm's mean with its interval as a band (error bars for a single budget)."""
    ax.plot(curve.budgets, curve.mean, style, color=color, marker="o", lw=2, label=label)
    if curve.ci95 is None:
        return
    low, high = [c[0] for c in curve.ci95], [c[1] for c in curve.ci95]
    if len(curve.budgets) >= 2:
        ax.fill_between(curve.budgets, low, high, color=color, alpha=0.15, lw=0)
    else:
        y = curve.mean[0]
        ax.errorbar(curve.budgets, [y], yerr=[[y - low[0]], [high[0] - y]], color=color, capsize=4, lw=1.5)


def _curves_png(target: TargetResult, colors: dict[str, str]) -> bytes:
    fig = Figure(figsize=(9, 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    marks: list[float] = []
    for name, arm in target.arms.items():
        color = colors[name]
        label = f"{name} ({arm.kind}, {arm.curve.n_seeds} seeds)"
        _draw_curve(ax, arm.curve, color, LINESTYLE_BY_KIND[arm.kind], label)
        crossing = arm.crossing
        if crossing.status == "reached":
            d, ci = crossing.demos, crossing.ci95
            xerr = [[max(0.0, d - ci[0])], [max(0.0, ci[1] - d)]] if ci is not None else None
            marks += [d, *(ci or ())]
            ax.errorbar([d], [target.threshold], xerr=xerr, color=color, marker="D", ms=9, mec="black",
                        capsize=5, lw=2, zorder=5)
        else:
            right = crossing.status == "not_reached"
            start = crossing.lower_bound if right else crossing.upper_bound
            ax.annotate("", xy=(start * (1.55 if right else 1 / 1.5), target.threshold),
                        xytext=(start, target.threshold),
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2.5}, zorder=5)
    ax.axhline(target.threshold, color="0.25", ls=":", lw=1.5)
    _log_x(ax, target.budgets, marks)
    if target.higher_is_better:
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.03, 1.03)
    else:
        ax.set_ylabel("offline action error (fixed action scale; lower is better)")
    ax.set_title(f"{target.label}: {target.robot} {target.task}")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.25", ls=":", label=f"threshold {target.threshold:.3g}"),
                Line2D([], [], color="0.4", marker="D", ls="", mec="black", label="demos to threshold (95% CI)"),
                Line2D([], [], color="0.4", marker=">", ls="", label="not reached (> max) / already at min (≤)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    return _png(fig)


def _slices_png(target: TargetResult, colors: dict[str, str]) -> bytes | None:
    measured = {s for arm in target.arms.values() for s in arm.per_slice}
    slices = [s for s in target.slices if s in measured] + sorted(measured - set(target.slices))
    if not slices:
        return None
    columns = min(len(slices), 3)
    rows = -(-len(slices) // columns)
    fig = Figure(figsize=(3.6 * columns + 2.2, 3.1 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for ax, slice_name in zip(axes, slices):
        for name, arm in target.arms.items():
            if slice_name in arm.per_slice:
                _draw_curve(ax, arm.per_slice[slice_name], colors[name], LINESTYLE_BY_KIND[arm.kind], name)
        ax.axhline(target.threshold, color="0.25", ls=":", lw=1.5)
        _log_x(ax, target.budgets)
        ax.set_title(slice_name)
    for ax in axes[len(slices):]:
        ax.set_visible(False)
    axes[0].set_ylim(-0.03, 1.03)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", frameon=False)
    fig.suptitle(f"{target.label}: per evaluation slice")
    return _png(fig)


_GAIN_ROWS = (("adaptation_gain", -0.25, "C0", "o", "adaptation gain (demos)"),
              ("wallclock_gain", 0.0, "C1", "s", "wall-clock gain, adaptation only"),
              ("wallclock_gain_amortized", 0.25, "C2", "^", "wall-clock gain, pretraining amortized"))


def _gain_points(gain: GainRecord) -> list[float]:
    return [v for v in (gain.value, gain.confidence_bound, *(gain.ci95 or ())) if v is not None and v > 0]


def _gains_png(audit: AuditResult) -> bytes:
    """One row per target: the adaptation and wall-clock gains, each with its interval or bound."""
    targets = list(audit.targets.values())
    fig = Figure(figsize=(9, 1.5 + 1.1 * len(targets)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    span = [1.0, audit.goal.demos_gain, audit.goal.wallclock_gain]
    span += [v for t in targets for key, *_ in _GAIN_ROWS for v in _gain_points(getattr(t, key))]
    low, high = min(span) / 4, max(span) * 12  # margins for the bounds' arrows (x3) and the labels
    ax.set_xlim(low, high)
    for row, target in enumerate(targets):
        for key, offset, color, marker, _ in _GAIN_ROWS:
            gain, y = getattr(target, key), row + offset
            if gain.value is None or gain.value <= 0:
                ax.text(low * 1.15, y, "n/a", va="center", ha="left", color=color, fontsize=9)
                continue
            value, bound = gain.value, gain.kind in ("lower_bound", "upper_bound")
            label_x = value
            if bound:  # an open interval: the arrow points to the side the true gain lies on
                end = value * 3 if gain.kind == "lower_bound" else value / 3
                ax.annotate("", xy=(end, y), xytext=(value, y),
                            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2})
                label_x = max(end, value)
            elif gain.ci95 is not None:
                lo, hi = gain.ci95
                ax.errorbar([value], [y], xerr=[[max(0.0, value - lo)], [max(0.0, hi - value)]], color=color,
                            capsize=5, lw=2)
                label_x = max(hi, value)
            ax.plot([value], [y], marker, color=color, ms=8, mfc="white" if bound else color, mew=2)
            short = gain.text.split(" (")[0]  # the notes in brackets are in the tables
            ax.text(label_x * 1.15, y, short, ha="left", va="center", fontsize=9, color=color)
    ax.axvline(1.0, color="0.3", lw=1)
    ax.axvline(audit.goal.demos_gain, color="C0", ls="--", lw=1)
    ax.axvline(audit.goal.wallclock_gain, color="C1", ls="--", lw=1)
    ax.set_yticks(range(len(targets)), [t.label for t in targets])
    ax.set_ylim(len(targets) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("gain (x, log scale; 1 = no gain)")
    ax.grid(alpha=0.3, axis="x")
    handles = [Line2D([], [], color=color, marker=marker, label=label) for _, _, color, marker, label in _GAIN_ROWS]
    handles += [Line2D([], [], color="0.4", marker="o", mfc="white", ls="", label="bound (arrow: open side)"),
                Line2D([], [], color="0.4", ls="--", label="goal")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    ax.set_title("Gains with 95% intervals")
    return _png(fig)


def render_plots(audit: AuditResult) -> dict[str, bytes]:
    """Every plot the report embeds, as PNG bytes keyed by file name."""
    colors, plots = arm_colors(audit), {}
    if audit.targets:
        plots[GAINS_PLOT] = _gains_png(audit)
    for name, files in plot_names(audit).items():
        plots[files["curves"]] = _curves_png(audit.targets[name], colors)
        slices = _slices_png(audit.targets[name], colors)
        if slices is not None:
            plots[files["slices"]] = slices
    return plots
