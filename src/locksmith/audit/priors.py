"""The audit's prior, and what each arm takes from it.

A plan's prior is locksmith's own policy (the published prior, a checkpoint, or the plan's
pretraining stage) or a LeRobot ACT (``prior.checkpoint`` naming a ``lerobot-train``
``pretrained_model`` folder, told apart by its ``config.json`` as `locksmith eval` tells them
apart, `locksmith.train.lerobot_checkpoint.is_lerobot_checkpoint`). Each arm starts from:

    prior kind   adapted arms                     scratch                        act (peer baseline)
    locksmith    head, token, lora, full: the     the prior's architecture,      LeRobot's ACT at the peer's
                 prior's weights                  random init                    default size, random init
    lerobot      lerobot_finetune: the prior's    the published prior's          the prior's ACT architecture
                 weights (`train.lerobot_prior`)  architecture, random init      (sizes, chunk), random init

so in a LeRobot-prior audit the two ACT arms differ in their starting weights only, and our own
policy from scratch stays beside them as a second baseline.

Every run's key holds a digest of what its arm takes from the prior (`ArmSources.digest`): the
weights for the adapted arms (for a LeRobot prior: its ``config.json`` and ``model.safetensors``),
the architecture for the others, never a folder path. A folder re-pointed at other weights gives
new runs instead of stale ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from locksmith.audit.plan import PEER_ARMS, PlanError, TransferPlan
from locksmith.digest import folder_digest
from locksmith.policy.adapters import RECIPES
from locksmith.train.lerobot_prior import LEROBOT_ARMS

log = logging.getLogger(__name__)

PriorKind = Literal["locksmith", "lerobot"]
ARCHITECTURE_ONLY_ARMS = ("scratch", "scratch_native", *PEER_ARMS)  # arms that use no prior weights
# The forms of an arm's `RunSpec.prior_digest` that name an architecture: our prior's config and
# instructions (scratch), the plain-head twin's (scratch_native), a LeRobot prior's ACT; ACT on
# intent adds `INTENT_SUFFIX` to its ACT's.
ARCHITECTURE = "architecture:"
NATIVE_ARCHITECTURE = ARCHITECTURE + "native:"
LEROBOT_ARCHITECTURE = ARCHITECTURE + "lerobot:"
INTENT_SUFFIX = ":intent"


class AuditError(ValueError):
    """The audit cannot run as planned (an incompatible target, too few demos, ...)."""


def prior_architecture(prior_dir: Path) -> str:
    """What a scratch arm takes from the prior: its config and instruction cache, hashed."""
    return ARCHITECTURE + folder_digest(prior_dir, ("config.json", "instructions.safetensors"))[:16]


def native_architecture(prior_dir: Path) -> str:
    """What the ``scratch_native`` arm takes from the prior: the config of its plain-head twin
    (`adapters.native_twin`: the same sizes, ``action_space`` native, ``intent_features`` absolute)
    and the instruction cache, hashed as `prior_architecture` hashes its files. So a native prior's
    key is the one its files give, and intent priors that differ only in what the twin resets (an
    absolute and a relative one of the same sizes) share their plain-head runs."""
    import dataclasses

    from locksmith.policy.config import PolicyConfig
    from locksmith.policy.policy import CONFIG_FILE

    on_disk = (prior_dir / CONFIG_FILE).read_text()
    config = PolicyConfig.from_json(on_disk)
    twin = dataclasses.replace(config, action_space="native", intent_features="absolute")
    # a native prior is its own twin: its file as written, so its runs keep the key they had
    text = on_disk if twin == config else twin.to_json()
    digest = folder_digest(prior_dir, (CONFIG_FILE, "instructions.safetensors"), contents={CONFIG_FILE: text.encode()})
    return NATIVE_ARCHITECTURE + digest[:16]


def lerobot_architecture(prior_dir: Path) -> str:
    """What the ``act`` arm takes from a LeRobot prior: its ACT architecture, hashed."""
    from locksmith.train.lerobot_prior import read_architecture

    text = json.dumps(read_architecture(prior_dir), sort_keys=True)
    return LEROBOT_ARCHITECTURE + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_recipes_fit_prior(plan: TransferPlan, kind: PriorKind, source: str) -> None:
    """Refuse recipes the prior cannot run: our keys on a LeRobot policy, `LEROBOT_ARMS` on ours.

    A LeRobot prior is also measured against LeRobot's ACT trained from scratch with its own
    architecture, so it needs ``peer_baseline: act``.

    Raises:
        PlanError: one line naming ``source`` (the plan file) and the field.
    """
    if kind == "lerobot":
        if plan.observation == "pixels":
            raise PlanError(f"{source}: observation: 'pixels' with a LeRobot prior (prior.checkpoint "
                            f"{plan.prior.checkpoint}) is not built: its ACT is fine-tuned on the scene state")
        ours = [r for r in plan.recipes if r not in LEROBOT_ARMS]
        if ours:
            raise PlanError(f"{source}: recipes: {ours[0]!r} is a key of locksmith's own policy, but prior.checkpoint "
                            f"{plan.prior.checkpoint} is a LeRobot policy; its arm is "
                            f"{' or '.join(LEROBOT_ARMS)}")
        if plan.peer_baseline != "act":
            raise PlanError(f"{source}: peer_baseline: {plan.peer_baseline!r}; a LeRobot prior is measured against "
                            "LeRobot's ACT trained from scratch with the same architecture (peer_baseline: act)")
        return
    theirs = [r for r in plan.recipes if r in LEROBOT_ARMS]
    if theirs:
        what = (f"prior.checkpoint {plan.prior.checkpoint} is a locksmith checkpoint"
                if plan.prior is not None and plan.prior.checkpoint is not None
                else "the prior is locksmith's own policy")
        raise PlanError(f"{source}: recipes: {theirs[0]!r} fine-tunes a LeRobot policy, but {what}; name "
                        f"{', '.join(r for r in RECIPES if r != 'scratch')}, or give a LeRobot checkpoint as "
                        "prior.checkpoint")
    pixel_only = [r for r in plan.recipes if RECIPES[r].freeze_vision]
    if pixel_only and plan.observation != "pixels":
        raise PlanError(f"{source}: recipes: {pixel_only[0]!r} freezes a pixel prior's vision encoder, and this "
                        "plan's prior reads the scene state, which has none (observation: pixels for a pixel prior)")


def prior_kind(plan: TransferPlan) -> PriorKind:
    """``lerobot`` when ``prior.checkpoint`` is a LeRobot policy's folder, else ``locksmith``."""
    from locksmith.train.lerobot_checkpoint import is_lerobot_checkpoint

    section = plan.prior
    if section is not None and section.checkpoint is not None and is_lerobot_checkpoint(section.checkpoint):
        return "lerobot"
    return "locksmith"


@dataclass(frozen=True)
class CheckedPrior:
    """What `check_prior` loaded before anything was written.

    Attributes:
        kind: the prior's kind.
        prior_dir / prior: our policy that scratch's architecture comes from and every target is
            checked against: the prior itself, or the published prior for a LeRobot prior; None
            when the plan pretrains its own.
        lerobot: the LeRobot prior (`train.lerobot_prior.LeRobotPrior`), read and checked.
    """

    kind: PriorKind
    prior_dir: Path | None
    prior: object | None
    lerobot: object | None = None


def check_prior(plan: TransferPlan, source: str) -> CheckedPrior:
    """Load and check the plan's prior, and that the plan's recipes fit its kind.

    Raises:
        PlanError: naming ``source`` (the plan file) and the field.
    """
    from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy
    from locksmith.priors import shipped_prior

    kind = prior_kind(plan)
    check_recipes_fit_prior(plan, kind, source)
    section = plan.prior
    lerobot = None
    if kind == "lerobot":
        from locksmith.train.lerobot_prior import load_lerobot_prior

        try:
            lerobot = load_lerobot_prior(section.checkpoint)
        except CheckpointError as err:
            raise PlanError(f"{source}: prior.checkpoint: {err}") from None
    elif section is not None and section.checkpoint is None:  # the plan's own pretraining stage: built later
        _check_native_twin(plan, kind, section.action_space == "intent", source)
        return CheckedPrior(kind, None, None)
    try:
        prior_dir = shipped_prior() if section is None or kind == "lerobot" else Path(section.checkpoint)
        checked = CheckedPrior(kind, prior_dir, CrossEmbodimentPolicy.from_pretrained(prior_dir), lerobot)
    except CheckpointError as err:
        where = "prior.checkpoint" if section is not None and kind == "locksmith" else "the published prior"
        raise PlanError(f"{source}: {where}: {err}") from None
    _check_native_twin(plan, kind, checked.prior.config.intent, source)
    sees = checked.prior.config.observation
    if kind == "locksmith" and sees != plan.observation:  # the data, scratch and ACT all follow the plan's field
        where = f"prior.checkpoint {prior_dir}" if section is not None else f"the published prior ({prior_dir})"
        hint = ("name a pixel prior as prior.checkpoint, or give a prior: section to pretrain one"
                if plan.observation == "pixels" else "set observation: pixels")
        raise PlanError(f"{source}: observation: the plan's arms see {plan.observation!r}, but {where} reads "
                        f"{sees!r}; {hint}")
    return checked


def _check_native_twin(plan: TransferPlan, kind: PriorKind, intent: bool, source: str) -> None:
    """``scratch_architectures: prior_and_native`` needs an intent prior: beside a native prior
    the plain-head scratch arm would be the scratch arm again."""
    if plan.scratch_architectures == "prior_and_native" and (kind == "lerobot" or not intent):
        raise PlanError(f"{source}: scratch_architectures: 'prior_and_native' trains the plain-head twin of an "
                        "intent prior (prior.action_space: intent); this prior already has plain heads, so its "
                        "scratch arm is that architecture (use 'prior')")


def ensure_prior(plan: TransferPlan, out: Path, progress: bool = True) -> tuple[Path, dict]:
    """The prior's checkpoint folder and what is known of it: the published prior when the plan
    names none, a named checkpoint (ours or a LeRobot ACT), or the plan's pretraining stage,
    built by `build_prior` (the path `locksmith pretrain` takes) into the user cache, keyed by
    its settings."""
    from locksmith.policy.policy import CheckpointError
    from locksmith.priors import cache_dir, shipped_prior, shipped_record
    from locksmith.train.loop import TrainConfig
    from locksmith.train.prior import PRETRAIN_RECORD, PriorRecipe, build_prior, recipe_trunk

    section = plan.prior
    if section is None:
        try:
            path = shipped_prior()
        except CheckpointError as err:
            raise AuditError(str(err)) from None
        record = shipped_record()
        return path, {"checkpoint": str(path), "source": "published", "cached": True,
                      "pretrain_seconds": record.get("pretrain_seconds"),
                      "robots": list(record.get("recipe", {}).get("robots", [])),
                      "tasks": list(record.get("recipe", {}).get("tasks", [])), "weights_sha256": folder_digest(path)}
    if section.checkpoint is not None:
        path = Path(section.checkpoint)
        if prior_kind(plan) == "lerobot":
            from locksmith.train.lerobot_prior import checkpoint_digest, training_pool

            return path, {"checkpoint": str(path), "source": "LeRobot act checkpoint", "kind": "lerobot",
                          "cached": True, "pretrain_seconds": None, "weights_sha256": checkpoint_digest(path),
                          "scratch_architecture": str(shipped_prior()), **training_pool(path)}
        if not (path / "config.json").is_file():
            raise PlanError(f"prior.checkpoint: {path} is not a locksmith checkpoint (no config.json)")
        record = _read_record(path.parent / PRETRAIN_RECORD)
        return path, {"checkpoint": str(path), "source": "checkpoint", "cached": True,
                      "pretrain_seconds": record.get("pretrain_seconds"), "weights_sha256": folder_digest(path)}
    stage = cache_dir() / "priors" / section.cache_key()
    record_path = stage / PRETRAIN_RECORD
    cached = record_path.is_file() and (stage / "policy" / "config.json").is_file()
    if not cached:
        recipe = PriorRecipe(robots=section.robots, tasks=section.tasks, demos_per_robot=section.demos_per_robot,
                             weights=section.weights, temperature=section.temperature,
                             demo_noise=section.demo_noise, demo_start_jitter=section.demo_start_jitter,
                             trunk=recipe_trunk({**section.trunk, **section.policy_fields()}))
        config = TrainConfig(steps=section.steps, batch_size=section.batch_size, lr=section.lr, seed=section.seed,
                             checkpoint_every=max(50, section.steps // 10))
        log.info("pretraining the prior into %s", stage)
        build_prior(recipe, config, stage, resume=True, progress=progress, tune_episodes=section.tune_episodes)
    record = _read_record(record_path)
    return stage / "policy", {"checkpoint": str(stage / "policy"), "source": "pretrained by the plan",
                              "cached": cached, "pretrain_seconds": record.get("pretrain_seconds"),
                              "robots": list(section.robots), "tasks": list(section.tasks),
                              "weights_sha256": folder_digest(stage / "policy")}


def _read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, OSError):
        return {}


@dataclass(frozen=True)
class ArmSources:
    """Which folder each arm reads and the digest of what it takes from it (`RunSpec.prior`,
    `RunSpec.prior_digest`).

    Attributes:
        kind: the prior's kind.
        prior_dir: the prior the adapted arms start from (ours, or the LeRobot checkpoint).
        architecture_dir: our policy whose architecture scratch trains (the prior itself, or the
            published prior beside a LeRobot prior).
        weights_digest / architecture_digest / act_digest: what the adapted arms, scratch and
            ACT take (scratch_native: `native_architecture` of ``architecture_dir``).
    """

    kind: PriorKind
    prior_dir: Path
    architecture_dir: Path
    weights_digest: str
    architecture_digest: str
    act_digest: str

    def directory(self, arm: str) -> Path:
        if arm == "scratch":
            return self.architecture_dir
        if arm == "scratch_native":  # the prior's trunk with plain per-robot heads (`native_twin`)
            return self.architecture_dir
        return self.prior_dir  # a LeRobot prior's ACT architecture is read from it for the act arm too

    @functools.cached_property
    def native_digest(self) -> str:
        """`native_architecture` of ``architecture_dir``, read once (every run spec asks for it)."""
        return native_architecture(self.architecture_dir)

    def digest(self, arm: str) -> str:
        if arm == "scratch":
            return self.architecture_digest
        if arm == "scratch_native":
            return self.native_digest
        if arm == "act_intent":
            return self.act_digest + INTENT_SUFFIX
        if arm in PEER_ARMS:
            return self.act_digest
        return self.weights_digest


def arm_sources(prior_dir: Path, prior_info: dict, architecture_dir: Path,
                image_size: int | None = None) -> ArmSources:
    """The sources of every arm, from `ensure_prior`'s folder and record and scratch's architecture;
    ``image_size``: a pixel prior's, at which ACT reads the same camera (its own key)."""
    weights = "weights:" + prior_info["weights_sha256"][:16]
    if prior_info.get("kind") == "lerobot":
        return ArmSources("lerobot", Path(prior_dir), Path(architecture_dir), weights,
                          prior_architecture(architecture_dir), lerobot_architecture(prior_dir))
    from locksmith.train.act_peer import default_architecture_digest

    # ACT from scratch beside our prior reads nothing of it: its runs are the same for every prior
    return ArmSources("locksmith", Path(prior_dir), Path(prior_dir), weights, prior_architecture(prior_dir),
                      default_architecture_digest(image_size))


def earlier_act_digest(old: str, new: str) -> bool:
    """Whether ``old``, the digest of an ACT run finished while ACT from scratch beside our prior
    was keyed by that prior's architecture (which it never read), is the same arm as ``new``, the
    key by ACT's size alone (`act_peer.default_architecture_digest`, plus `INTENT_SUFFIX` for
    ``act_intent``). The size itself is checked against the run's checkpoint by the caller."""
    from locksmith.train.act_peer import default_architecture_digest

    base = default_architecture_digest()
    ours = old.startswith(ARCHITECTURE) and not old.startswith((LEROBOT_ARCHITECTURE, NATIVE_ARCHITECTURE))
    same_output = old.endswith(INTENT_SUFFIX) == new.endswith(INTENT_SUFFIX)
    return new in (base, base + INTENT_SUFFIX) and ours and same_output


__all__ = ["ARCHITECTURE_ONLY_ARMS", "LEROBOT_ARMS", "ArmSources", "AuditError", "CheckedPrior", "arm_sources",
           "check_prior", "earlier_act_digest", "ensure_prior", "folder_digest", "lerobot_architecture",
           "native_architecture", "prior_architecture", "prior_kind"]
