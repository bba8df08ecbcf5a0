"""`CrossEmbodimentPolicy`: per-robot stems and heads around one shared trunk.

    robot r:  state, environment_state ──stem_r──► tokens ─┐
    instruction ──frozen sentence encoder──► language ──────┼─► trunk (shared) ─► readouts ──head_r──► action chunk
    embodiment token e_r ───────────────────────────────────┘

Interface (as LeRobot's policies): `forward(batch) -> (loss, metrics)`, `predict_action_chunk`,
`select_action` with an action queue per robot, `reset()`, `save_pretrained` /
`from_pretrained` (safetensors + config JSON + normalizer stats + specs + instruction cache).
A training batch is grouped by robot: ``{robot: {feature: tensor}}``; the loss is
``Σ_r w_r L1_r / Σ_r w_r`` over normalized action chunks with padded steps masked.

With ``action_space="intent"`` (`locksmith.policy.intent`) the trunk's shared stem and head
speak shared intent in the base frame, a robot's stem is its frame and its head a residual, and
its `IntentDecoder` turns intent into its commands.

Relative actions (`EmbodimentConfig.action_state_index`): a robot's joint-position targets are
learned as ``action[t + k] - state[t]`` (normalized with the stats of those differences), and
the current joint state is added back in `predict_action_chunk`, so callers always see
absolute commands in the robot's native units. A policy that only has to say "move 2 cm
further" is far more precise than one that regresses the absolute joint angle of the goal.
"""

from __future__ import annotations

import json
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from locksmith.atomic import swap_into_place
from locksmith.data.targets import named_colours
from locksmith.embodiment.spec import EmbodimentSpec, SpecError, load_spec
from locksmith.policy.config import PolicyConfig
from locksmith.policy.heads import ActionHead
from locksmith.policy.language import InstructionEncoder
from locksmith.policy.normalize import EmbodimentNormalizer, to_absolute, to_relative
from locksmith.policy.stems import Stem, split_scene
from locksmith.policy.trunk import Trunk
from locksmith.sim.scene import N_OBJECTS

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATS_FILE = "normalizer_stats.json"
LANGUAGE_FILE = "instructions.safetensors"
SPECS_DIR = "specs"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, damaged, from a newer version, or for other robots."""


class CrossEmbodimentPolicy(nn.Module):
    def __init__(self, config: PolicyConfig, stats: Mapping[str, Mapping] | None = None,
                 specs: Mapping[str, EmbodimentSpec] | None = None):
        super().__init__()
        self.config = config
        d = config.d_model
        if config.intent:  # a robot's stem is its frame (built from its spec), its head a residual
            from locksmith.policy.intent import IntentFrame, IntentResidual

            missing = [e.name for e in config.embodiments if e.name not in (specs or {})]
            if missing:
                raise ValueError(f"an intent policy builds each robot's frame from its spec; no spec for {missing}")
            relative = config.intent_features == "relative"
            self.stems = nn.ModuleDict({e.name: IntentFrame(specs[e.name], e.chunk_size, relative=relative)
                                        for e in config.embodiments})
            self.heads = nn.ModuleDict({e.name: IntentResidual(d, config.n_readouts) for e in config.embodiments})
        elif config.pixels:  # the robot's state token and camera embedding; the encoder is the trunk's
            from locksmith.policy.vision import PixelStem

            self.stems = nn.ModuleDict({e.name: PixelStem(e, d, config.image_size, config.keypoints)
                                        for e in config.embodiments})
            self.heads = nn.ModuleDict({e.name: ActionHead(e, d, config.n_readouts, config.head_multiplier)
                                        for e in config.embodiments})
        else:
            self.stems = nn.ModuleDict({e.name: Stem(e, d) for e in config.embodiments})
            self.heads = nn.ModuleDict({e.name: ActionHead(e, d, config.n_readouts, config.head_multiplier)
                                        for e in config.embodiments})
        self.embodiment_tokens = nn.ParameterDict(
            {e.name: nn.Parameter(torch.randn(d) * 0.02) for e in config.embodiments})
        self.normalizers = nn.ModuleDict({
            e.name: EmbodimentNormalizer.from_stats(stats[e.name], e.relative_actions,
                                                    e.env_dim if config.pixels else None) if stats and e.name in stats
            else EmbodimentNormalizer.identity(e.state_dim, e.env_dim, e.action_dim)
            for e in config.embodiments
        })
        self.trunk = Trunk(config)
        self.specs: dict[str, EmbodimentSpec] = dict(specs or {})
        self.stats: dict[str, Mapping] = {k: v for k, v in (stats or {}).items()}
        self.language = InstructionEncoder()
        self._queues: dict[str, deque] = {}

    # ------------------------------------------------------------------ core
    def _relative_index(self, robot: str, device: torch.device) -> torch.Tensor | None:
        """(A,) state dimension of each action dimension (-1: absolute), or None if all absolute."""
        emb = self.config.embodiment(robot)
        if not emb.relative_actions:
            return None
        return torch.as_tensor(emb.action_state_index, dtype=torch.long, device=device)

    def action_targets(self, robot: str, action: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, H, A) native actions, (B, state_dim) → (B, H, A) what the head learns (normalized)."""
        index = self._relative_index(robot, action.device)
        if index is not None:
            action = to_relative(action, state, index)
        return self.normalizers[robot].action.normalize(action)

    def native_actions(self, robot: str, predicted: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Inverse of `action_targets`: (B, H, A) head output → native actions."""
        action = self.normalizers[robot].action.unnormalize(predicted)
        index = self._relative_index(robot, predicted.device)
        return action if index is None else to_absolute(action, state, index)

    def _readouts(self, groups: Mapping[str, tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
        """One trunk pass for several robots' samples; returns readouts per robot (B_r, R, D).

        ``groups[robot] = (state, environment_state, language (B, L, 384), language_mask (B, L))``,
        plus the camera image (B, H, W, 3) for a pixel policy.
        """
        return self._encode(groups)[0]

    def _encode(self, groups: Mapping[str, tuple[torch.Tensor, ...]],
                entity_outputs: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """As `_readouts`, plus (with ``entity_outputs``) each robot's object and pad token outputs
        (B_r, N_OBJECTS + N_PADS, D)."""
        tokens, masks, embs, langs, lang_masks, sizes = [], [], [], [], [], []
        width = max(self.stems[r].n_tokens for r in groups)
        n_lang = max(g[2].shape[1] for g in groups.values())
        for robot, (state, env_state, language, language_mask, *image) in groups.items():
            if language.shape[1] < n_lang:  # pad instructions to the longest in the batch
                extra = n_lang - language.shape[1]
                language = torch.cat([language, language.new_zeros(language.shape[0], extra, language.shape[2])], 1)
                language_mask = torch.cat([language_mask, language_mask.new_ones(language_mask.shape[0], extra)], 1)
            norm = self.normalizers[robot]
            if self.config.intent:
                t = self.trunk.intent_stem(*self.stems[robot].features(env_state))
            elif self.config.pixels:  # the environment state is never read
                if not image:
                    raise ValueError(f"{robot}: a pixel policy needs the camera image ({self.camera_feature(robot)})")
                pixels = image[0]  # (B, H, W, 3) pictures, or (B, T, D) tokens cached by a frozen encoder
                colours = image[1] if len(image) > 1 else None  # the instruction's named colours (colour_film)
                cells = pixels if pixels.dim() == 3 else self.trunk.vision(pixels, colours)
                t = self.stems[robot](norm.state.normalize(state), cells)
            else:
                t = self.stems[robot](norm.state.normalize(state), norm.environment_state.normalize(env_state),
                                      env_state)
            b, s, d = t.shape
            pad = width - s
            mask = torch.zeros(b, width, dtype=torch.bool, device=t.device)
            mask[:, 0] = self.config.intent  # the intent stem's state token is a masked placeholder
            if pad:
                t = torch.cat([t, t.new_zeros(b, pad, d)], dim=1)
                mask[:, s:] = True
            tokens.append(t)
            masks.append(mask)
            embs.append(self.embodiment_tokens[robot].expand(b, -1))
            langs.append(language)
            lang_masks.append(language_mask)
            sizes.append(b)
        out = self.trunk(torch.cat(embs), torch.cat(langs), torch.cat(lang_masks), torch.cat(tokens), torch.cat(masks),
                         return_entity_tokens=entity_outputs)
        if not entity_outputs:
            return dict(zip(groups, torch.split(out, sizes), strict=True)), {}
        readouts, entity_tokens = out
        return (dict(zip(groups, torch.split(readouts, sizes), strict=True)),
                dict(zip(groups, torch.split(entity_tokens, sizes), strict=True)))

    def batch_group(self, robot: str, b: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """One robot's training batch (a `ChunkSampler` sample's keys) → its `_readouts` group: state,
        scene state, language and its mask, and for a pixel policy the camera and the named colours."""
        return (b["observation.state"], b["observation.environment_state"], b["language"], b["language_mask"],
                *((b[self.camera_feature(robot)], b.get("named_colours")) if self.config.pixels else ()))

    def _grounding_loss(self, entity_out: torch.Tensor, b: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Cross-entropy of "which object / pad does the instruction name" from the shared head.

        ``entity_out`` (B, N_OBJECTS + N_PADS, D): the outputs at [objects x3, pads x2].
        Returns (loss, object accuracy).
        """
        logits = self.trunk.grounding(entity_out).squeeze(-1)  # (B, 5)
        obj_logits, pad_logits = logits[:, :N_OBJECTS], logits[:, N_OBJECTS:]
        target_object, target_pad = b["target_object"].long(), b["target_pad"].long()
        loss = nn.functional.cross_entropy(obj_logits, target_object, ignore_index=-1)
        if bool((target_pad >= 0).any()):
            loss = loss + nn.functional.cross_entropy(pad_logits, target_pad, ignore_index=-1)
        accuracy = float((obj_logits.argmax(-1) == target_object).float().mean())
        return loss, accuracy

    def forward(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked L1 on normalized action chunks, weighted per robot by ``batch[r]["weight"]``; with
        ``grounding_weight > 0`` and target labels in the batch, plus that times the grounding loss."""
        groups = {r: self.batch_group(r, b) for r, b in batch.items()}
        grounding = self.trunk.grounding is not None and all("target_object" in b for b in batch.values())
        scene = self.trunk.scene is not None and all(
            "target_object" in b and b["observation.environment_state"].shape[-1] > 0 for b in batch.values())
        readouts, entity_out = self._encode(groups, entity_outputs=grounding)
        total, weight_sum, metrics = 0.0, 0.0, {}
        for robot, b in batch.items():
            if self.config.intent:
                loss = self._intent_loss(robot, readouts[robot], b)
            else:
                pred = self.heads[robot](readouts[robot])  # (B, H, A)
                target = self.action_targets(robot, b["action"], b["observation.state"])  # (B, H, A)
                keep = (~b["action_is_pad"]).unsqueeze(-1).to(pred.dtype)  # (B, H, 1)
                loss = (torch.abs(pred - target) * keep).sum() / (keep.sum() * pred.shape[-1]).clamp_min(1.0)
            metrics[f"loss/{robot}"] = float(loss.detach())
            if grounding:
                aux, accuracy = self._grounding_loss(entity_out[robot], b)
                metrics[f"grounding/{robot}"] = float(aux.detach())
                metrics[f"grounding_accuracy/{robot}"] = accuracy
                loss = loss + self.config.grounding_weight * aux
            if scene:
                aux = self._scene_loss(robot, readouts[robot], b)
                metrics[f"scene/{robot}"] = float(aux.detach())
                loss = loss + self.config.scene_weight * aux
            w = float(b.get("weight", 1.0))
            total = total + w * loss
            weight_sum += w
        loss = total / max(weight_sum, 1e-12)
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    def _scene_loss(self, robot: str, readouts: torch.Tensor, b: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """L1 between where the scene head puts the instruction's cube and pad and where the recorded
        scene state has them (camera frame, on the robot's normalized scale); labels of -1 do not count."""
        scene = self.normalizers[robot].environment_state.normalize(b["observation.environment_state"])
        n, rows = scene.shape[0], torch.arange(scene.shape[0], device=scene.device)
        objects, pads, _ = split_scene(scene, self.config.embodiment(robot).n_arms)
        obj, pad = b["target_object"].long(), b["target_pad"].long()
        target = torch.cat([objects[rows, obj.clamp_min(0), :3], pads[rows, pad.clamp_min(0), :3]], -1)
        keep = torch.cat([(obj >= 0)[:, None].expand(n, 3), (pad >= 0)[:, None].expand(n, 3)], -1).to(scene.dtype)
        pred = self.trunk.scene(readouts.reshape(n, -1))
        return (torch.abs(pred - target) * keep).sum() / keep.sum().clamp_min(1.0)

    def _intent_knots(self, robot: str, readouts: torch.Tensor) -> torch.Tensor:
        """(B, R, D) → normalized intent knots (B, K, slots): the shared head plus the robot's residual."""
        return self.trunk.intent_head(readouts) + self.heads[robot](readouts)

    def _intent_loss(self, robot: str, readouts: torch.Tensor, b: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked L1 on the normalized intent knots of the robot's slots."""
        if "intent" not in b:
            raise ValueError(f"{robot}: an intent policy trains on the recorded 'intent' feature, and these "
                             "demonstrations have none (record them with `locksmith demos`)")
        target, mask = self.stems[robot].targets(b["intent"], b["action_is_pad"])
        keep = mask.to(readouts.dtype)
        return (torch.abs(self._intent_knots(robot, readouts) - target) * keep).sum() / keep.sum().clamp_min(1.0)

    # ------------------------------------------------------------------ acting
    def embed_instructions(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction tokens (B, L, 384) and their padding mask (B, L)."""
        device = next(self.parameters()).device
        tokens, mask = self.language.encode(instructions)
        return torch.as_tensor(tokens, device=device), torch.as_tensor(mask, device=device)

    def camera_feature(self, robot: str) -> str:
        """The observation a pixel policy reads for ``robot``: its spec's first camera."""
        from locksmith.policy.vision import camera_feature

        if robot not in self.specs:
            raise ValueError(f"{robot}: a pixel policy reads the camera its spec names, and it has no spec for it")
        return camera_feature(self.specs[robot])

    @torch.no_grad()
    def predict_action_chunk(self, robot: str, state: torch.Tensor | np.ndarray,
                             environment_state: torch.Tensor | np.ndarray, instructions: list[str],
                             image: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """(B, state_dim), (B, env_dim), B instructions → (B, chunk_size, action_dim), native units;
        for an intent policy (B, chunk_size, intent_dim) intent, which the robot's `IntentDecoder`
        turns into commands step by step (`evaluate.rollout.PolicyAgent` does). A pixel policy
        reads ``image`` (B, H, W, 3) uint8, its robot's first camera, and not ``environment_state``."""
        if robot not in self.stems:
            raise CheckpointError(f"this policy has no embodiment {robot!r}; it knows {sorted(self.stems)}")
        device = next(self.parameters()).device
        state = torch.as_tensor(state, dtype=torch.float32, device=device)
        env_state = torch.as_tensor(environment_state, dtype=torch.float32, device=device)
        pixels = () if image is None or not self.config.pixels else (
            torch.as_tensor(image, device=device), torch.as_tensor(named_colours(instructions), device=device))
        readouts = self._readouts({robot: (state, env_state, *self.embed_instructions(instructions), *pixels)})[robot]
        if self.config.intent:
            return self.stems[robot].to_intent(self._intent_knots(robot, readouts))
        return self.native_actions(robot, self.heads[robot](readouts), state)

    @torch.no_grad()
    def select_action(self, robot: str, state, environment_state, instructions: list[str],
                      image=None) -> np.ndarray:
        """Next action (B, action_dim), re-planning every ``n_action_steps`` from a queue."""
        queue = self._queues.setdefault(robot, deque())
        if not queue:
            chunk = self.predict_action_chunk(robot, state, environment_state, instructions, image)
            steps = self.config.embodiment(robot).n_action_steps
            queue.extend(chunk[:, :steps].transpose(0, 1).cpu().numpy())
        return queue.popleft()

    def reset(self) -> None:
        self._queues.clear()

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the checkpoint folder atomically (temporary folder, then rename)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(self.config.to_json())
        (tmp / STATS_FILE).write_text(json.dumps(
            {r: {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in st.items()} for r, st in self.stats.items()}))
        if self.language.cache:
            texts = sorted(self.language.cache)
            save_file({f"instruction_{i}": torch.as_tensor(self.language.cache[t]) for i, t in enumerate(texts)},
                      tmp / LANGUAGE_FILE, metadata={"instructions": json.dumps(texts)})
        (tmp / SPECS_DIR).mkdir()
        for name, spec in self.specs.items():
            (tmp / SPECS_DIR / f"{name}.yaml").write_text(spec.to_yaml())
        swap_into_place(tmp, directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> CrossEmbodimentPolicy:
        """The policy saved in ``directory``, in eval mode (as LeRobot's policies load): a training
        loop switches it to train mode itself."""
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: checkpoint folder not found")
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                lerobot = directory / "checkpoints" / "last" / "pretrained_model"
                hint = (f"; {directory} looks like a `locksmith pretrain`/`adapt` output folder: "
                        f"give {directory / 'policy'}" if (directory / "policy" / CONFIG_FILE).is_file() else
                        f"; {directory} looks like a lerobot-train output folder: give {lerobot}"
                        if (lerobot / CONFIG_FILE).is_file() else "")
                raise CheckpointError(f"{directory}: not a locksmith checkpoint (no {name}){hint}")
        try:
            config = PolicyConfig.from_json((directory / CONFIG_FILE).read_text())
        except KeyError as err:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {err.args[0] if err.args else err}") from None
        except (ValueError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {' '.join(str(err).split())[:300]}") from None
        try:
            specs = {p.stem: load_spec(p) for p in sorted((directory / SPECS_DIR).glob("*.yaml"))}
        except SpecError as err:
            raise CheckpointError(str(err)) from None
        stats = {}
        if (directory / STATS_FILE).is_file():
            try:
                raw = json.loads((directory / STATS_FILE).read_text())
                stats = {r: {f: {k: np.asarray(v, dtype=np.float64) for k, v in s.items()} for f, s in st.items()}
                         for r, st in raw.items()}
            except (ValueError, TypeError, AttributeError) as err:
                raise CheckpointError(f"{directory / STATS_FILE}: cannot be read ({err})") from None
        try:
            policy = cls(config, specs=specs)
        except (ValueError, TypeError, KeyError) as err:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {' '.join(str(err).split())[:300]}") from None
        policy.stats = stats
        try:
            weights = load_file(directory / WEIGHTS_FILE, device=map_location)
        except Exception as err:  # safetensors raises its own error types for a damaged file
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: cannot be read ({err})") from None
        try:
            missing, unexpected = policy.load_state_dict(weights, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: weights do not match the config: "
                                  f"{str(err).splitlines()[-1].strip()}") from None
        if missing or unexpected:
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: weights do not match the config "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        for name, tensor in weights.items():  # an all-NaN prior would adapt to a NaN key
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise CheckpointError(f"{directory / WEIGHTS_FILE}: tensor {name!r} holds NaN or Inf values")
        if (directory / LANGUAGE_FILE).is_file():
            from safetensors import safe_open

            with safe_open(directory / LANGUAGE_FILE, framework="pt") as f:
                texts = json.loads(f.metadata()["instructions"])
                cache = {t: f.get_tensor(f"instruction_{i}").numpy() for i, t in enumerate(texts)}
            policy.language = InstructionEncoder(cache)
        return policy.eval()
