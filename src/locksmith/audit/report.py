"""The audit report: an `AuditResult` → ``report.md`` and a self-contained ``report.html``.

The report is a pure function of the validated audit: the sections below are built once as
blocks (`render.Block`) and rendered to both documents, so they always say the same thing. How
to read the numbers is in ``docs/report.md``.

Layout written by :func:`write_report`::

    out_dir/report.md
    out_dir/report.html
    out_dir/plots/<n>-<target>-curves.png   success (or error) vs demos, one per target
    out_dir/plots/<n>-<target>-slices.png   the same per evaluation slice
    out_dir/plots/gains.png                 adaptation and wall-clock gains with intervals
    out_dir/panels/...                      rollout clips (written by `locksmith.audit.panels`, read here)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from locksmith.atomic import write_file_atomic
from locksmith.audit import render
from locksmith.audit.estimates import CurveRecord, no_interval
from locksmith.audit.estimates import short_number as _num
from locksmith.audit.plots import GAINS_PLOT, plot_names, render_plots
from locksmith.audit.render import PLOTS_DIR, Block, clips, table
from locksmith.audit.schema import (
    ArmRecord,
    AuditResult,
    PanelRecord,
    TargetResult,
    load_audit,
    write_audit_json,
)
from locksmith.evaluate.failures import OUTCOME_WORDS

__all__ = ["headline_lines", "load_audit", "read_clips", "render_html", "render_markdown", "report_blocks",
           "write_audit_json", "write_report"]

log = logging.getLogger(__name__)

OFFLINE_NOTE = "no simulator: offline action error on held-out episodes, lower is better"
_KIND_WORDS = {"adapted": "adapted from the prior", "scratch": "from scratch", "peer": "peer baseline, from scratch"}
_REASONS = {"fewer_demos": "it reached the threshold with fewer demos",
            "area_under_curve": "no winner on demos; the better mean curve over log-demos decided",
            "tie": "a full tie, broken alphabetically"}


def _metric(x: float, target: TargetResult) -> str:
    return f"{x:.2f}" if target.higher_is_better else f"{x:.3g}"


def headline_lines(audit: AuditResult) -> list[str]:
    """One line per target, as `summary.format_table` prints them first."""
    return [t.headline() for t in audit.targets.values()]


HOW_TO_READ = (
    "How to read this: for every target robot, each arm is trained on N demonstrations for each "
    "budget N and seed, then evaluated on the same evaluation episodes. Demos to threshold is the "
    "number of demonstrations at which an arm's mean curve reaches the threshold ('> 50' means it "
    "did not within the largest budget, '≤ 5' that it already had at the smallest). The adaptation "
    "gain is the baseline's demos to threshold divided by the headline arm's, with a bootstrap 95% "
    "interval and the number of seeds it rests on; '> 12x' is a lower bound (the baseline did not "
    "reach the threshold). The headline arm is the recipe the plan named before anything ran; the "
    "baseline is the stronger of the from-scratch arms. Details: docs/report.md.")


def report_blocks(audit: AuditResult) -> list[Block]:
    """The whole report, headline lines first."""
    names = plot_names(audit)
    out = [Block("lines", items=tuple(headline_lines(audit))),
           Block("heading", "Transfer audit", level=1), Block("para", HOW_TO_READ)]
    if audit.quick:
        out.append(Block("para", "Quick mode: tiny budgets, few training steps and episodes; a smoke test of the pipeline, not a measurement."))
    out += _run_blocks(audit)
    if audit.targets:
        out += [Block("heading", "Gains"),
                Block("figure", "Adaptation and wall-clock gains with 95% intervals (arrows: bounds)",
                      figure=GAINS_PLOT)]
        out += _goal_blocks(audit)
    for name, target in audit.targets.items():
        out += _target_blocks(target, names[name], len(audit.targets))
    out += _reproducibility_blocks(audit)
    return out


def _run_blocks(audit: AuditResult) -> list[Block]:
    kinds = {a: arm.kind for t in audit.targets.values() for a, arm in t.arms.items()}
    arms = [f"{a} ({_KIND_WORDS[kinds[a]]})" if a in kinds else a for a in audit.arms_ran]
    prior = audit.prior
    if prior.pretrain_seconds is None:
        pretraining = "time unknown (the prior came as a ready checkpoint)"
    else:
        pretraining = f"{_num(prior.pretrain_seconds)} s" + (" (reused from cache)" if prior.cached else "")
    rows = [["arms ran", ", ".join(arms)],
            ["headline recipe", f"{audit.headline_recipe} (fixed in the plan before the runs)"],
            ["prior", f"{prior.source}: {prior.checkpoint}"],
            ["prior weights sha256", prior.weights_sha256 or "n/a"],
            ["prior robots", ", ".join(prior.robots) or "n/a"],
            ["prior tasks", ", ".join(prior.tasks) or "n/a"],
            ["pretraining", pretraining],
            ["observation", "scene state (privileged: every cube's and pad's pose, size and colour)"
             if prior.image_size is None else f"pixels: each robot's first camera at {prior.image_size} px, for "
             "every arm (ACT through its own ResNet-18); never the scene state"],
            *([["scratch architecture", f"{prior.scratch_architecture} (our policy beside the LeRobot prior)"]]
              if prior.scratch_architecture else []),
            ["plan file", audit.plan_file or "none (embedded default)"]]
    return [Block("heading", "Run"), table(["", ""], rows)]


def _goal_blocks(audit: AuditResult) -> list[Block]:
    goal, rows = audit.goal, []
    for name, t in audit.targets.items():
        verdict = {True: "met", False: "not met", None: "undetermined"}[t.goal_met]
        rows.append([name, t.adaptation_gain.text, t.goal_checks.demos, t.wallclock_gain.text,
                     t.goal_checks.wallclock, verdict])
    met = sum(t.goal_met is True for t in audit.targets.values())
    missed = sum(t.goal_met is False for t in audit.targets.values())
    rule = (f"Goal (fixed in locksmith, not in the plan): adaptation gain ≥ {_num(goal.demos_gain)}x with the "
            f"interval's lower end ≥ {_num(goal.demos_gain_lower)}x, and wall-clock gain (adaptation only) "
            f"≥ {_num(goal.wallclock_gain)}x. Met on {met} of {len(rows)} targets, not met on {missed}, "
            f"undetermined on {len(rows) - met - missed}.")
    return [Block("heading", "Goal"), Block("para", rule),
            table(["target", "adaptation gain", "demos goal", "wall-clock gain (adaptation only)",
                   "wall-clock goal", "verdict"], rows)]


def _seed_range(seeds: tuple[int, ...]) -> str:
    if not seeds:
        return "n/a"
    contiguous = list(seeds) == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"{seeds[0]}–{seeds[-1]}" if contiguous and len(seeds) > 1 else ", ".join(map(str, seeds))


def _metric_sentence(t: TargetResult) -> str:
    if t.metric == "offline_action_error":
        scale = ", ".join(f"{x:.3g}" for x in t.action_scale)
        return (f"Metric: {OFFLINE_NOTE} (dataset {t.dataset}). The error is in units of one fixed absolute "
                f"action scale ({scale}), the same for every arm and budget.")
    slices = ", ".join(t.slices)
    per_slice = len(t.eval_seeds)
    return (f"Metric: closed-loop success rate in simulation, higher is better, on {len(t.episode_keys)} "
            f"evaluation episodes, the same for every run (slices {slices}; {per_slice} evaluation seeds "
            f"{_seed_range(t.eval_seeds)} per slice, disjoint from the demonstrations and from the validation "
            "seeds the learning rates were chosen on).")


def _target_blocks(t: TargetResult, plots: dict[str, str], n_targets: int) -> list[Block]:
    threshold = f"Threshold {_num(t.threshold)} ({t.threshold_rule})"
    if t.expert is not None:
        threshold += f"; the scripted expert scored {t.expert.success_rate:.2f} on the same episodes"
    wall, amortized = t.wallclock_gain, t.wallclock_gain_amortized
    amortized_what = (f" ({_num(amortized.extra_seconds)} s added to the headline arm: pretraining / {n_targets} "
                      f"target{'s' if n_targets != 1 else ''})" if amortized.extra_seconds > 0 else "")
    out = [Block("heading", f"{t.label}: {t.robot}, {t.task}"),
           Block("para", f"{_metric_sentence(t)} {threshold}. Training seeds {', '.join(map(str, t.seeds))}; "
                 f"{t.demos_available} demonstrations to draw from."),
           Block("para", f"Adaptation gain ({t.headline_arm} vs {t.baseline.name}): {t.adaptation_gain.text}. "
                 f"Wall-clock gain, adaptation only (training seconds to the threshold, measured at checkpoints "
                 f"along training): {wall.text}. With pretraining amortized{amortized_what}: {amortized.text}."),
           Block("para", _baseline_sentence(t))]
    if t.other_gains:
        out += [Block("para", "Every other recipe and baseline, each with its interval:"),
                Block("bullets", items=tuple(f"{g.adapted_arm} vs {g.baseline_arm}: {g.text}"
                                             for g in t.other_gains))]
    out += _curve_blocks(t)
    rows = [[name, arm.kind, arm.crossing.text(), arm.crossing.interval_text(),
             f"{arm.seconds_to_threshold.text()} s", _num(arm.trainable_parameters),
             *(f"{_num(arm.train_seconds[b])} s / {_num(arm.frames[b])}" if b in arm.train_seconds else "n/a"
               for b in t.budgets)] for name, arm in t.arms.items()]
    out += [Block("heading", "Demos and time to threshold; training seconds / frames by budget", level=3),
            table(["arm", "kind", "demos to threshold", "95% CI", "time to threshold", "trainable params",
                   *map(str, t.budgets)], rows),
            Block("figure", f"{t.label}: metric vs demonstrations", figure=plots["curves"])]
    if any(arm.per_slice for arm in t.arms.values()):
        out.append(Block("figure", f"{t.label}: per evaluation slice", figure=plots["slices"]))
    out += _recipe_blocks(t)
    out += _cost_blocks(t)
    out += _negative_blocks(t)
    out += _shield_blocks(t)
    out += _rollout_blocks(t)
    out.append(Block("para", f"Every run's demonstration episodes, value and key: audit.json, "
                             f"targets.{t.label}.arms.<arm>.runs."))
    if t.notes:
        out += [Block("heading", "Notes", level=3), Block("bullets", items=t.notes)]
    return out


def _curve_cell(curve: CurveRecord, budget: int, t: TargetResult) -> str:
    at = curve.at(budget)
    if at is None:
        return "-"
    mean, ci = at
    return _metric(mean, t) + (f" [{_metric(ci[0], t)}, {_metric(ci[1], t)}]" if ci is not None else "")


def _curve_blocks(t: TargetResult) -> list[Block]:
    rows = [[name, *(_curve_cell(arm.curve, b, t) for b in t.budgets),
             str(arm.curve.n_seeds) if arm.curve.ci95 is not None else no_interval(arm.curve.n_seeds)]
            for name, arm in t.arms.items()]
    what = "success" if t.higher_is_better else "error"
    return [Block("heading", f"Mean {what} [95% CI] by demonstrations", level=3),
            table(["arm", *map(str, t.budgets), "seeds"], rows)]


def _baseline_sentence(t: TargetResult) -> str:
    scratch = [a for a, arm in t.arms.items() if arm.kind != "adapted"]
    if len(scratch) == 1:
        return f"Baseline: {t.baseline.name}, the only from-scratch arm; gains are measured against it."
    listed = ", ".join(f"{a} ({t.arms[a].crossing.text()} demos)" for a in scratch)
    return (f"Baseline: {t.baseline.name}, the stronger from-scratch arm of {listed} "
            f"({_REASONS[t.baseline.reason]}); gains are measured against it.")


def _cost_blocks(t: TargetResult) -> list[Block]:
    if t.cost is None:
        return []
    c = t.cost
    rows = [[arm, str(c.runs[arm]), f"{_num(c.training_seconds[arm])} s", f"{_num(c.evaluation_seconds[arm])} s"]
            for arm in c.runs]
    recording = ("not known (a dataset target, or a pool recorded before recording times were kept)"
                 if c.recording_seconds is None else f"{_num(c.recording_seconds)} s")
    return [Block("heading", "Where the time went", level=3),
            Block("para", f"Recording the demo pool: {recording}. Per arm, summed over its runs (tuning runs "
                          "included), each run on one worker with one thread:"),
            table(["arm", "runs", "training", "evaluation"], rows)]


def _lr_cell(arm: ArmRecord) -> str:
    tuning = arm.tuning
    if tuning is None or not tuning.validation:
        return f"{arm.training.lr:g} (one rate in the plan: not tuned)"
    scores = ", ".join(f"{lr}: {v:.3g}" for lr, v in tuning.validation.items())
    return (f"{arm.training.lr:g}, chosen from {scores} ({tuning.validation_episodes} validation episodes, "
            f"{tuning.budget} demos, seed {tuning.seed})")


def _penalty(name: str, arm: ArmRecord) -> str:
    if arm.training.weight == 0:
        return "none"
    if name == "full":
        return f"L2-SP λ={arm.training.weight:g} (toward the prior)"
    return f"λ‖φ‖², λ={arm.training.weight:g}"


def _recipe_blocks(t: TargetResult) -> list[Block]:
    rows = []
    for name, arm in t.arms.items():
        tr = arm.training
        clip = f"clip {tr.grad_clip:g}" if tr.grad_clip else "no clipping"
        lora = f"rank {tr.lora_rank}, α {tr.lora_alpha:g}" if tr.lora_rank is not None else "-"
        steps = ", ".join(f"{b}: {s} ({tr.warmup_steps[b]} warm-up)" for b, s in sorted(tr.steps.items()))
        rows.append([name, arm.description, _lr_cell(arm),
                     f"{tr.schedule} schedule, {clip}, weight decay {tr.weight_decay:g}, batch {tr.batch_size}",
                     _penalty(name, arm), lora, steps])
    return [Block("heading", "Training recipe that ran (learning rate chosen on validation seeds)", level=3),
            table(["arm", "trains", "learning rate", "optimisation", "penalty", "LoRA", "steps by budget"], rows)]


def _negative_blocks(t: TargetResult) -> list[Block]:
    items = []
    for f in t.negative_transfer:
        if not f.below:
            continue
        if f.ci95 is None:
            test = f"{no_interval(f.n_seeds)}: not tested"
        else:
            test = (f"[{_metric(f.ci95[0], t)}, {_metric(f.ci95[1], t)}] ({f.n_seeds} seeds): "
                    + ("significant" if f.significant else "not significant"))
        items.append(f"{f.arm} worse than {f.versus} at {f.budget} demos: {_metric(f.adapted_mean, t)} vs "
                     f"{_metric(f.baseline_mean, t)}, difference {_metric(f.difference, t)} {test}")
    return [Block("heading", "Negative transfer", level=3),
            Block("bullets", items=tuple(items)) if items
            else Block("para", "None: no adapted arm was worse than the baseline at any budget.")]


def _shield_blocks(t: TargetResult) -> list[Block]:
    out = [Block("heading", "Safety-shield interventions (all evaluation episodes)", level=3)]
    kinds = sorted({k for arm in t.arms.values() for k in arm.shield_interventions})
    if not kinds:
        return out + [Block("para", "None recorded.")]
    rows = [[name, *(_num(arm.shield_interventions.get(k, 0)) for k in kinds),
             _num(sum(arm.shield_interventions.values()))] for name, arm in t.arms.items()]
    return out + [table(["arm", *kinds, "total"], rows)]


def _caption(panel: PanelRecord) -> str:
    """``dropped (dropped the cube); nominal/2000000004; shield: 3 (joint_limit 2, workspace 1)``."""
    label = panel.outcome if panel.outcome == "success" else f"{panel.outcome} ({OUTCOME_WORDS[panel.outcome]})"
    count = sum(panel.interventions.values())
    shield = (f"{count} ({', '.join(f'{k} {v}' for k, v in sorted(panel.interventions.items()))})" if count
              else "no interventions")
    text = f"{label}; {panel.episode_key}; shield: {shield}"
    if panel.recorded_success != panel.success:
        text += f"; the evaluation recorded a {'success' if panel.recorded_success else 'failure'} (replay differs)"
    return text


def _rollout_blocks(t: TargetResult) -> list[Block]:
    if t.source != "sim":
        return []
    out = [Block("heading", "Rollouts", level=3)]
    if t.panels:
        panel = t.panels[0]
        headline = t.arms[t.headline_arm].crossing.text()
        out.append(Block("para", (
            f"Evaluation episodes replayed from their seeds with each run's final checkpoint, every action "
            f"through the safety shield: the headline arm {t.headline_arm} and the baseline {t.baseline.name}, "
            f"both at {panel.budget} demos (the budget nearest {t.headline_arm}'s demos to threshold, {headline}), "
            f"training seed {panel.seed}; the first successes and failures of each, in evaluation-episode order. "
            f"Each clip is labelled with why the episode failed and the shield's interventions in it "
            f"(labels: docs/report.md).")))
        for arm in dict.fromkeys(p.arm for p in t.panels):
            mine = [p for p in t.panels if p.arm == arm]
            words = "headline, " if arm == t.headline_arm else "baseline, " if arm == t.baseline.name else ""
            out += [Block("para", f"{arm} ({words}{_KIND_WORDS[t.arms[arm].kind]}), {mine[0].budget} demos, "
                                  f"seed {mine[0].seed}:"),
                    clips([(p.file, _caption(p)) for p in mine])]
    if t.panels_note:
        out.append(Block("para", t.panels_note))
    elif not t.panels:
        out.append(Block("para", "No rollout clips in this audit (`locksmith audit` renders them from the runs' "
                                 "checkpoints)."))
    return out


def _reproducibility_blocks(audit: AuditResult) -> list[Block]:
    rep = audit.reproducibility
    out = [Block("heading", "Reproducibility")]
    if rep is None:
        out.append(Block("para", "Not recorded (this audit was summarized outside `locksmith audit`)."))
    else:
        rows = [["command", rep.command], ["seeds", ", ".join(map(str, rep.seeds))],
                ["versions", ", ".join(f"{k} {v}" for k, v in rep.versions.items()) or "n/a"],
                ["machine", ", ".join(f"{k} {v}" for k, v in rep.machine.items()) or "n/a"],
                ["workers", "Ray " + rep.ray_address if rep.ray_address else str(rep.workers or "default")],
                ["started", rep.started], ["finished", rep.finished], ["seconds", _num(rep.seconds)],
                ["quick mode", "yes" if audit.quick else "no"]]
        rows += [[f"dataset {k}", v] for k, v in rep.dataset_fingerprints.items()]
        out.append(table(["", ""], rows))
    return out + [Block("heading", "Plan", level=3),
                  Block("code", json.dumps(audit.plan, indent=2, ensure_ascii=False))]


def render_markdown(audit: AuditResult) -> str:
    """``report.md``: the headline lines first, then the sections; plots linked under ``plots/``."""
    return render.render_markdown(report_blocks(audit))


def render_html(audit: AuditResult, plots: dict[str, bytes] | None = None,
                clip_files: dict[str, bytes] | None = None) -> str:
    """``report.html``, self-contained: inline CSS, no script, plots and clips as base64 data URIs
    (``clip_files``: bytes by `PanelRecord.file`)."""
    return render.render_html(report_blocks(audit), plots, clip_files=clip_files)


def read_clips(audit: AuditResult, out_dir: Path) -> dict[str, bytes]:
    """The rollout clips the audit records, read from ``out_dir`` (a missing one is left out)."""
    found = {}
    for target in audit.targets.values():
        for panel in target.panels:
            path = Path(out_dir) / panel.file
            if path.is_file():
                found[panel.file] = path.read_bytes()
            else:
                log.warning("report: clip %s is missing", path)
    return found


def write_report(audit: AuditResult, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and the PNG plots into ``out_dir``, each atomically; the
    HTML embeds the rollout clips found under ``out_dir/panels/``.

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
    write_file_atomic(written["html"], render_html(audit, plots, read_clips(audit, out_dir)).encode())
    log.info("report written to %s (%d plots)", out_dir, len(plots))
    return written
