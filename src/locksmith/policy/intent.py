"""The intent action space of the policy (``PolicyConfig.action_space = "intent"``).

The shared trunk predicts chunks of *intent* (`locksmith.sim.intent`: per arm the TCP velocity and
the commanded gripper closure, plus the base velocity of a mobile robot) instead of each robot's
own command, and each robot's `IntentDecoder` turns it into that robot's command inside the
control loop. For the trunk's intent to mean the same on every robot, three things are fixed:

Frame: the robot's base frame (x forward, z up), for observations and intent alike. It is the
    frame the robot's IK and the spec's safety box are written in, and the recorded intent is
    already in it; the camera frame would make a reach forward point another way on every robot.
    The scene state is recorded in the first camera's frame, so each robot's `IntentFrame` turns it
    into the base frame with the camera extrinsics of its spec (local, as the seed puts them). For a
    mobile robot that is the frame its base had where the spec's camera was mounted (the base's
    pose at the start of an episode).
Units: lengths in units of the robot's reach (the forward extent of its spec's safety box), so a
    200 mm arm and a 900 mm arm describe the same motion with the same numbers; velocities in
    reach per second, scaled by `SPEED_UNIT`; the base's yaw rate by `YAW_UNIT`; closure
    fractions mapped from [0, 1] to [-1, 1]. These constants are the same for every robot and
    every policy (pool prior, key and scratch arm alike): intent is normalized once, not per robot.
Time: a chunk is `INTENT_KNOTS` knots over `CHUNK_SECONDS`, whatever the robot's control rate;
    the training target of a knot is the mean of the recorded intent over its control steps,
    and at run time every control step takes the intent of its knot.

The shared stem (`IntentStem`) and head (`IntentHead`) live in the trunk, so every robot and
every adapter shares them; a robot's own parts are its frame (built from its spec, nothing
learned) and a small residual head (`IntentResidual`, zero at the start, so a new robot's key
begins as the shared prediction: the zero-shot key).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.config import ARM_FIELDS, MAX_ARMS, OBJECT_FIELDS, PAD_FIELDS
from locksmith.sim.intent import ARM_INTENT, BASE_INTENT, intent_size
from locksmith.sim.scene import N_OBJECTS, N_PADS

INTENT_KNOTS = 10
CHUNK_SECONDS = 1.0
INTENT_SLOTS = ARM_INTENT * MAX_ARMS + BASE_INTENT  # arm 0, arm 1, base
SPEED_UNIT = 0.5  # reach/s that maps to 1 (recorded TCP speeds: q99 0.25-0.67 reach/s)
YAW_UNIT = 1.0  # rad/s that maps to 1
OFFSET_GAIN = 4.0  # an entity's offset from a TCP, in quarter reaches: order one near a grasp
OBJECT_IN = 3 + 1 + 3 + 3 * MAX_ARMS  # position, half size, colour, offsets from each TCP
PAD_IN = 3 + 3 + 3 * MAX_ARMS  # position, colour, offsets
ARM_IN = 3 + 1 + MAX_ARMS  # TCP position, closure, which arm (one-hot)


def reach(spec: EmbodimentSpec) -> float:
    """The robot's length scale, from its spec alone: its safety box's forward extent (m)."""
    value = float(spec.safety.workspace_max[0])
    if not value > 0:
        raise ValueError(f"{spec.name}: safety.workspace_max[0]={value}: the intent policy needs a "
                         "positive forward reach")
    return value


def camera_to_base(spec: EmbodimentSpec) -> tuple[np.ndarray, np.ndarray]:
    """(R, p): the first camera's rotation (columns right, up, backward) and position in the base
    frame, from the spec's extrinsics; a point x in the camera frame is ``R @ x + p``."""
    import mujoco

    from locksmith.sim.scene import look_at_quat

    if not spec.cameras:  # the simulator then records positions in the world frame
        return np.eye(3), np.zeros(3)
    cam = spec.cameras[0]
    pos = np.asarray(cam.position, dtype=float)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, look_at_quat(pos, np.asarray(cam.look_at, dtype=float)))
    return rot.reshape(3, 3), pos


def knot_of_step(chunk_size: int) -> np.ndarray:
    """(chunk_size,) the knot each control step of a chunk falls in."""
    return np.minimum(np.arange(chunk_size) * INTENT_KNOTS // chunk_size, INTENT_KNOTS - 1)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class IntentFrame(nn.Module):
    """One robot's local part of the intent policy, built from its spec (nothing learned): the
    camera-to-base transform, its reach, which intent slots it has and how its control steps map
    onto knots. Its tensors are buffers left out of the checkpoint (the spec rebuilds them)."""

    def __init__(self, spec: EmbodimentSpec, chunk_size: int, relative: bool = False):
        super().__init__()
        self.relative = relative  # PolicyConfig.intent_features == "relative"
        self.n_arms = len(spec.arms)
        if self.n_arms > MAX_ARMS:
            raise ValueError(f"{spec.name}: {self.n_arms} arms; the intent policy serves at most {MAX_ARMS}")
        self.has_base = spec.base is not None
        self.intent_dim = intent_size(spec)
        rot, pos = camera_to_base(spec)
        self.reach = reach(spec)
        slots = list(range(ARM_INTENT * self.n_arms))
        if self.has_base:
            slots += list(range(ARM_INTENT * MAX_ARMS, INTENT_SLOTS))
        unit = np.ones(INTENT_SLOTS)  # physical value per normalized unit, closures apart
        offset = np.zeros(INTENT_SLOTS)
        for arm in range(MAX_ARMS):
            unit[ARM_INTENT * arm: ARM_INTENT * arm + 3] = SPEED_UNIT * self.reach
            unit[ARM_INTENT * arm + 3], offset[ARM_INTENT * arm + 3] = 0.5, 0.5  # c = 0.5 u + 0.5
        base = ARM_INTENT * MAX_ARMS
        unit[base: base + 2], unit[base + 2] = SPEED_UNIT * self.reach, YAW_UNIT
        mask = np.zeros(INTENT_SLOTS, dtype=bool)
        mask[slots] = True
        knots = knot_of_step(chunk_size)
        onehot = np.zeros((INTENT_KNOTS, chunk_size), dtype=np.float32)
        onehot[knots, np.arange(chunk_size)] = 1.0
        for name, value in (("rotation", rot), ("position", pos), ("unit", unit), ("offset", offset)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32), persistent=False)
        self.register_buffer("slots", torch.as_tensor(slots, dtype=torch.long), persistent=False)
        self.register_buffer("slot_mask", torch.as_tensor(mask), persistent=False)
        self.register_buffer("knots", torch.as_tensor(knots, dtype=torch.long), persistent=False)
        self.register_buffer("knot_steps", torch.as_tensor(onehot), persistent=False)

    @property
    def n_tokens(self) -> int:
        return 1 + N_OBJECTS + N_PADS + self.n_arms

    def _base(self, camera: torch.Tensor) -> torch.Tensor:
        """(..., 3) camera-frame positions → base frame, in reaches."""
        return (camera @ self.rotation.T + self.position) / self.reach

    def features(self, environment_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, env_dim) raw environment state → the shared stem's inputs: objects (B, 3, OBJECT_IN),
        pads (B, 2, PAD_IN), arms (B, n_arms, ARM_IN)."""
        b = environment_state.shape[0]
        o_end = N_OBJECTS * OBJECT_FIELDS
        p_end = o_end + N_PADS * PAD_FIELDS
        objects = environment_state[:, :o_end].reshape(b, N_OBJECTS, OBJECT_FIELDS)
        pads = environment_state[:, o_end:p_end].reshape(b, N_PADS, PAD_FIELDS)
        arms = environment_state[:, p_end:].reshape(b, self.n_arms, ARM_FIELDS)
        tcp = self._base(arms[:, :, :3])  # (B, n, 3)
        obj_pos, pad_pos = self._base(objects[:, :, :3]), self._base(pads[:, :, :3])

        def offsets(p: torch.Tensor) -> torch.Tensor:  # (B, N, 3) → (B, N, 3 * MAX_ARMS)
            rel = ((p[:, :, None, :] - tcp[:, None, :, :]) * OFFSET_GAIN).flatten(2)
            return nn.functional.pad(rel, (0, 3 * MAX_ARMS - rel.shape[-1]))

        which = torch.eye(MAX_ARMS, device=tcp.device, dtype=tcp.dtype)[: self.n_arms].expand(b, -1, -1)
        obj_off, pad_off = offsets(obj_pos), offsets(pad_pos)
        if self.relative:  # where the robot stands drops out: offsets, and heights above the pads' table
            table = pad_pos[:, :, 2].mean(dim=1)[:, None, None]
            obj_pos, pad_pos, tcp = (_height(p, table) for p in (obj_pos, pad_pos, tcp))
        return (torch.cat([obj_pos, objects[:, :, 3:4] / self.reach, objects[:, :, 4:7], obj_off], -1),
                torch.cat([pad_pos, pads[:, :, 3:6], pad_off], -1),
                torch.cat([tcp, arms[:, :, 3:4], which], -1))

    def targets(self, intent: torch.Tensor, is_pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, intent_dim) recorded intent chunks and (B, H) padding → normalized knot targets
        (B, K, INTENT_SLOTS) and where the loss counts them (same shape, bool)."""
        slots = intent.new_zeros(*intent.shape[:2], INTENT_SLOTS)
        slots[..., self.slots] = intent
        normalized = (slots - self.offset) / self.unit
        keep = (~is_pad).to(intent.dtype)  # (B, H)
        counts = torch.einsum("kh,bh->bk", self.knot_steps, keep)
        target = torch.einsum("kh,bh,bhs->bks", self.knot_steps, keep, normalized) / counts.clamp_min(1.0)[..., None]
        mask = (counts > 0)[..., None] & self.slot_mask
        return target, mask

    def to_intent(self, knots: torch.Tensor) -> torch.Tensor:
        """(B, K, INTENT_SLOTS) normalized knots → (B, H, intent_dim) intent per control step, in
        the recorded units (m/s in the base frame, closure in [0, 1], rad/s)."""
        physical = knots * self.unit + self.offset
        return physical[:, self.knots][..., self.slots]


def _height(position: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) base-frame positions → (0, 0, height above the table): the relative stem's place
    for a position, so that both stems read inputs of one size."""
    return nn.functional.pad(position[..., 2:] - table, (2, 0))


class IntentStem(nn.Module):
    """The shared stem: every robot's objects, pads and TCPs, in base-frame reaches → tokens."""

    def __init__(self, d_model: int):
        super().__init__()
        self.object = mlp(OBJECT_IN, d_model, d_model)
        self.pad = mlp(PAD_IN, d_model, d_model)
        self.arm = mlp(ARM_IN, d_model, d_model)

    def forward(self, objects: torch.Tensor, pads: torch.Tensor, arms: torch.Tensor) -> torch.Tensor:
        """→ (B, 1 + 3 + 2 + n_arms, D): a zero state token (the trunk masks it: a robot's own
        joint layout does not enter the intent policy), objects, pads, TCPs."""
        b = objects.shape[0]
        state = objects.new_zeros(b, 1, self.object[-1].out_features)
        return torch.cat([state, self.object(objects), self.pad(pads), self.arm(arms)], dim=1)


class IntentHead(nn.Module):
    """The shared head: readouts (B, R, D) → normalized intent knots (B, K, INTENT_SLOTS)."""

    def __init__(self, d_model: int, n_readouts: int, multiplier: int = 2):
        super().__init__()
        self.net = mlp(n_readouts * d_model, multiplier * d_model, INTENT_KNOTS * INTENT_SLOTS)

    def forward(self, readouts: torch.Tensor) -> torch.Tensor:
        b = readouts.shape[0]
        return self.net(readouts.reshape(b, -1)).reshape(b, INTENT_KNOTS, INTENT_SLOTS)


class IntentResidual(nn.Module):
    """One robot's learned correction to the shared intent, zero at the start."""

    def __init__(self, d_model: int, n_readouts: int):
        super().__init__()
        self.net = nn.Linear(n_readouts * d_model, INTENT_KNOTS * INTENT_SLOTS)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def forward(self, readouts: torch.Tensor) -> torch.Tensor:
        b = readouts.shape[0]
        return self.net(readouts.reshape(b, -1)).reshape(b, INTENT_KNOTS, INTENT_SLOTS)
