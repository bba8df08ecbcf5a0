"""Compatibility check of a target robot's spec and data against a prior, before adapting.

Each item gets a verdict: ``ok``, ``warning`` (adaptation may still work; read it) or ``error``
(adaptation would learn nonsense; `adapt` refuses unless forced).

| item | what is compared |
|---|---|
| lerobot_metadata | the dataset agrees with its own LeRobot metadata (`locksmith.data.metadata`) |
| dataset | the dataset loads: shapes match the spec, no NaN/Inf, stats present, episodes > 0 |
| action_layout | action dims and kinds of the spec against the data and the prior's robots |
| control_rate | the spec's control rate against the dataset's fps |
| units | joint values declared in radians that look like degrees, or the reverse |
| absolute_vs_delta | absolute joint commands that do not track the joint state, or deltas that do |
| gripper_polarity | episodes should start with the gripper open: the first command near ``open_value`` |
| prior_stats | this robot in the prior: share of the new data outside the prior's q01..q99 |
| near_constant | dimensions that never move in the data (normalized with unit scale) |
| prior_metadata | the prior carries normalization stats and specs |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from locksmith.data.loading import DatasetError, Demonstrations, load_demonstrations
from locksmith.data.metadata import INFO_FILE, check_dataset_metadata
from locksmith.embodiment.spec import EmbodimentSpec, SpecError
from locksmith.policy.policy import CrossEmbodimentPolicy

EPS = 1e-6


@dataclass(frozen=True)
class CheckItem:
    item: str
    verdict: str  # ok | warning | error
    message: str


@dataclass
class CompatibilityReport:
    prior: str
    dataset: str
    robot: str | None
    items: list[CheckItem]
    demos: Demonstrations | None = field(default=None, repr=False)  # the data checked, if it loaded

    @property
    def errors(self) -> list[CheckItem]:
        return [i for i in self.items if i.verdict == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"prior": self.prior, "dataset": self.dataset, "robot": self.robot, "ok": self.ok,
                "items": [asdict(i) for i in self.items]}

    def format(self) -> str:
        lines = [f"compatibility of {self.dataset} ({self.robot}) with prior {self.prior}:"]
        for i in self.items:
            lines.append(f"  [{i.verdict:>7}] {i.item:<18} {i.message}")
        lines.append("verdict: " + ("compatible" if self.ok else f"{len(self.errors)} error(s): adapt refuses"))
        return "\n".join(lines)


def _joint_columns(spec: EmbodimentSpec, section: str, kinds: tuple[str, ...]) -> dict[str, tuple[slice, object]]:
    out = {}
    for comp, sl in zip(getattr(spec, section), spec.slices(section).values(), strict=True):
        if comp.kind in kinds:
            out[comp.arm or comp.name] = (sl, comp)
    return out


def check_compatibility(prior: CrossEmbodimentPolicy, prior_dir: str | Path, dataset: str | Path,
                        spec: EmbodimentSpec | str | Path | None = None) -> CompatibilityReport:
    items: list[CheckItem] = []
    add = items.append
    if not prior.stats:
        add(CheckItem("prior_metadata", "error", "the prior has no normalization stats (normalizer_stats.json)"))
    elif not prior.specs:
        add(CheckItem("prior_metadata", "error", "the prior has no embodiment specs beside its weights"))
    else:
        add(CheckItem("prior_metadata", "ok", f"stats and specs of {sorted(prior.specs)}"))
    _check_lerobot_metadata(dataset, add)
    try:
        demos = load_demonstrations(dataset, spec)
    except (DatasetError, SpecError) as err:
        add(CheckItem("dataset", "error", str(err)))
        return CompatibilityReport(str(prior_dir), str(dataset), None, items)
    spec = demos.spec
    add(CheckItem("dataset", "ok", f"{demos.num_episodes} episodes, {demos.num_frames} frames"))
    _check_layout(prior, demos, add)
    if prior.config.pixels:  # it reads the robot's first camera, never the scene state
        _check_camera(prior, demos, add)
    else:
        _check_features(demos, add)
    add(CheckItem("control_rate", "ok", f"{spec.control_rate_hz:g} Hz = dataset fps {demos.fps:g}"))
    _check_units(demos, add)
    _check_absolute_vs_delta(demos, add)
    _check_gripper(demos, add)
    _check_prior_stats(prior, demos, add)
    _check_constant(demos, add)
    return CompatibilityReport(str(prior_dir), str(dataset), spec.name, items, demos)


def _check_lerobot_metadata(dataset: str | Path, add) -> None:
    """The dataset against its own metadata; a folder without info.json is the dataset item's to explain."""
    if not (Path(dataset) / INFO_FILE).is_file():
        return
    report = check_dataset_metadata(dataset)
    if report.ok:
        add(CheckItem("lerobot_metadata", "ok", f"info.json, stats.json and meta/episodes agree with the data "
                                                f"({report.episodes} episodes, {report.frames} frames)"))
    for line in report.lines():
        add(CheckItem("lerobot_metadata", "error", line))


def _check_features(demos: Demonstrations, add) -> None:
    """The policy reads the scene (objects, pads, each arm's TCP) from observation.environment_state."""
    from locksmith.policy.config import ARM_FIELDS, OBJECT_FIELDS, PAD_FIELDS
    from locksmith.sim.scene import N_OBJECTS, N_PADS

    expected = N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + len(demos.spec.arms) * ARM_FIELDS
    values = demos.arrays.get("observation.environment_state")
    if values is None:
        add(CheckItem("environment_state", "error",
                      f"{demos.root / 'meta' / 'info.json'}: no feature 'observation.environment_state'; the policy "
                      f"reads the scene from it ({expected} values per frame: {N_OBJECTS} objects x {OBJECT_FIELDS}, "
                      f"{N_PADS} pads x {PAD_FIELDS}, each arm's TCP x {ARM_FIELDS}, in the layout of docs/sim.md). "
                      "Add it to the dataset (e.g. object poses from your perception), then check again"))
        return
    if values.shape[1] != expected:
        add(CheckItem("environment_state", "error",
                      f"{demos.root / 'meta' / 'info.json'}: 'observation.environment_state' has {values.shape[1]} "
                      f"values per frame; the policy reads {expected} (the layout of docs/sim.md)"))
        return
    add(CheckItem("environment_state", "ok", f"{expected} values per frame"))


def _check_camera(prior: CrossEmbodimentPolicy, demos: Demonstrations, add) -> None:
    """A pixel prior reads the spec's first camera: the dataset must hold it (its pictures are
    fitted to the prior's square size as they load, `data.loading.fit_square`)."""
    import json

    from locksmith.policy.vision import camera_feature

    info = demos.root / "meta" / "info.json"
    try:
        camera = camera_feature(demos.spec)
    except ValueError as err:
        add(CheckItem("camera", "error", f"{err}; name the camera the dataset recorded in the spec's cameras"))
        return
    features = json.loads(info.read_text()).get("features", {})
    recorded = sorted(k for k in features if k.startswith("observation.images."))
    feature = features.get(camera)
    if feature is None or feature.get("dtype") not in ("video", "image"):
        add(CheckItem("camera", "error", f"{info}: no {camera!r} (video or image); the pixel prior reads the spec's "
                                         f"first camera, and the dataset has {recorded or 'no cameras'}"))
        return
    h, w = feature["shape"][:2]
    size = prior.config.image_size
    how = "as recorded" if (h, w) == (size, size) else "its centred square, resized"
    add(CheckItem("camera", "ok", f"{camera}: {h}x{w}, read at {size}x{size} px ({how})"))


def _check_layout(prior: CrossEmbodimentPolicy, demos: Demonstrations, add) -> None:
    spec = demos.spec
    known = prior.specs.get(spec.name)
    if known is not None:
        if known.action_dim != spec.action_dim or known.action_kind != spec.action_kind:
            add(CheckItem("action_layout", "error",
                          f"the prior's {spec.name!r} acts in {known.action_kind} ({known.action_dim} dims), "
                          f"this spec in {spec.action_kind} ({spec.action_dim} dims)"))
            return
        add(CheckItem("action_layout", "ok", f"{spec.action_kind}, {spec.action_dim} dims, as in the prior"))
        return
    kinds = sorted({s.action_kind for s in prior.specs.values()})
    verdict = "ok" if spec.action_kind in kinds else "warning"
    add(CheckItem("action_layout", verdict,
                  f"new robot: {spec.action_kind} ({spec.action_dim} dims); the prior's robots act in {kinds}"
                  + ("" if verdict == "ok" else "; a new stem and head learn this convention from scratch")))


def _check_units(demos: Demonstrations, add) -> None:
    spec, problems = demos.spec, []
    for section, key in (("state", "observation.state"), ("action", "action")):
        for arm, (sl, comp) in _joint_columns(spec, section, ("joint_position",)).items():
            values = np.abs(demos.arrays[key][:, sl])
            peak = float(values.max())
            limits = np.array([max(abs(spec.joint(j).lower), abs(spec.joint(j).upper)) for j in spec.arm(arm).joints])
            bound = float(limits.max() * comp.native_scale)
            if peak > 1.5 * bound + 1e-3:
                problems.append(("error", f"{section}.{comp.name}: values up to {peak:.3g} but the joint limits are "
                                          f"{bound:.3g} {comp.units}: degrees declared as radians?"))
            elif comp.units in ("deg", "deg/s") and peak < 0.1 * bound and peak > 0:
                problems.append(("warning", f"{section}.{comp.name}: declared in degrees but never beyond {peak:.3g}: radians?"))
    if not problems:
        add(CheckItem("units", "ok", "joint values within the spec's limits in its declared units"))
    for verdict, message in problems:
        add(CheckItem("units", verdict, message))


def _check_absolute_vs_delta(demos: Demonstrations, add) -> None:
    spec = demos.spec
    states = _joint_columns(spec, "state", ("joint_position",))
    found = False
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        if comp.kind not in ("joint_position", "joint_velocity") or comp.arm not in states:
            continue
        found = True
        s_sl, s_comp = states[comp.arm]
        action = demos.arrays["action"][:, sl] / comp.native_scale
        joints = demos.arrays["observation.state"][:, s_sl] / s_comp.native_scale
        tracking = float(np.mean(np.abs(action - joints)))
        spread = float(np.mean(np.std(joints, axis=0))) + EPS
        if comp.kind == "joint_position" and tracking > 2.0 * spread + 0.05:
            add(CheckItem("absolute_vs_delta", "error",
                          f"action.{comp.name} is declared absolute but is on average {tracking:.3g} from the joint "
                          f"state (state spread {spread:.3g}): deltas or velocities?"))
        elif comp.kind == "joint_velocity" and tracking < 0.05 * spread and spread > 0.01:
            add(CheckItem("absolute_vs_delta", "error",
                          f"action.{comp.name} is declared a velocity but follows the joint positions: absolute?"))
        else:
            add(CheckItem("absolute_vs_delta", "ok", f"action.{comp.name} consistent with {comp.kind}"))
    if not found:
        add(CheckItem("absolute_vs_delta", "ok", "no joint-space command to compare with the state"))


def _check_gripper(demos: Demonstrations, add) -> None:
    spec = demos.spec
    slices = spec.slices("action")
    for comp in spec.action:
        if comp.kind != "gripper":
            continue
        grip = spec.arm(comp.arm).gripper
        first = demos.arrays["action"][demos.episode_starts, slices[comp.name]][:, 0]
        closure = (first - grip.open_value) / (grip.closed_value - grip.open_value)
        share_closed = float(np.mean(closure > 0.5))
        if share_closed > 0.5:
            add(CheckItem("gripper_polarity", "error",
                          f"{comp.name}: {share_closed:.0%} of episodes start with the command near closed "
                          f"(open_value={grip.open_value:g}, closed_value={grip.closed_value:g}): polarity inverted?"))
        else:
            add(CheckItem("gripper_polarity", "ok", f"{comp.name}: episodes start open ({grip.polarity})"))


def _check_prior_stats(prior: CrossEmbodimentPolicy, demos: Demonstrations, add) -> None:
    stats = prior.stats.get(demos.spec.name)
    if not stats:
        add(CheckItem("prior_stats", "ok", "new robot: no prior statistics to compare with"))
        return
    for key in ("observation.state", "observation.environment_state", "action"):
        if key not in stats or key not in demos.arrays:
            continue
        lo, hi = np.asarray(stats[key]["q01"]), np.asarray(stats[key]["q99"])
        values = demos.arrays[key]
        if values.shape[1] != lo.shape[0]:
            add(CheckItem("prior_stats", "error", f"{key}: {values.shape[1]} dims, the prior's stats have {lo.shape[0]}"))
            continue
        outside = np.mean((values < lo) | (values > hi), axis=0)
        worst = int(np.argmax(outside))
        verdict = "warning" if outside[worst] > 0.1 else "ok"
        add(CheckItem("prior_stats", verdict, f"{key}: {outside.mean():.1%} of values outside the prior's q01..q99 "
                                              f"(worst dimension {worst}: {outside[worst]:.0%})"))


def _check_constant(demos: Demonstrations, add) -> None:
    names = {"observation.state": demos.spec.names("state"), "action": demos.spec.names("action")}
    flat = []
    for key, dim_names in names.items():
        std = demos.arrays[key].std(axis=0)
        flat += [f"{key}.{dim_names[i]}" for i in np.flatnonzero(std < 1e-4)]
    if flat:
        add(CheckItem("near_constant", "warning", f"never move in the data (unit scale used): {flat[:6]}"
                                                  + (" ..." if len(flat) > 6 else "")))
    else:
        add(CheckItem("near_constant", "ok", "every state and action dimension moves"))
