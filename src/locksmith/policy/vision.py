"""Pixels: the scene as the robot's first camera sees it, for a policy with ``observation="pixels"``.

    camera image (B, H, W, 3) uint8 ─► VisionEncoder (shared, in the trunk) ─► (B, (H/16)², D) ─┐
    observation.state (B, S) ─────────► PixelStem (the robot's own) ─► state token ────────────────┼─► trunk
                                        + the robot's camera embedding on every image token ───────┘

The encoder is four strided convolutions (H → H/16) and one linear map per cell, with a learned
embedding per cell; with ``keypoints`` K > 0 also one token of K keypoints, each the expected
position under a spatial softmax of one feature map of the second layer (stride 4), which keeps
where things are at four times the cells' resolution: at 64 px, 16 image tokens, ~0.15 M parameters at d_model 128. It is trained
on every pool robot's camera, so it is shared; what is local to a robot is its stem, whose
camera embedding (one vector added to each image token) carries the robot's own extrinsics,
and the spec that says which camera the policy reads (`camera_feature`). A pixel policy never
reads ``observation.environment_state``: that privileged state stays in the data for the
experts and the metrics.

With ``colour_film`` each convolution's feature maps are scaled and shifted (FiLM) by a map of the
colours the instruction names (`data.targets.named_colours`: the cube's and the pad's, from the text
alone, as the pixel ACT peer reads them): without it the encoder sees the cubes but does not learn
which one the words name (docs/benchmarks.md, "Why the pixel policy never grasps").

In training the encoder sees each picture shifted by up to ``image_shift`` pixels (replicate
padding, then a random crop back to size; DrQ's augmentation), so that it cannot key on exact
pixel positions of a few hundred recorded episodes; in evaluation it sees the picture as it is,
and so does a frozen encoder (the ``frozen_vision`` key, whose tokens are computed once per frame).
"""

from __future__ import annotations

import torch
from torch import nn

from locksmith.data.targets import COLOUR_DIM
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.config import EmbodimentConfig
from locksmith.sim.cameras import IMAGE_PREFIX

STRIDE = 16  # the encoder's total downsampling
CHANNELS = (32, 64, 64, 128)
KEYPOINT_LAYER = 1  # the keypoints' spatial softmax reads the second layer's map (stride 4: 16 x 16 at 64 px)
# Pixels to about zero mean and unit spread (a fixed map: no statistics to carry per robot).
PIXEL_MEAN, PIXEL_SCALE = 0.5, 0.25


def n_image_tokens(image_size: int, keypoints: int = 0) -> int:
    """One token per 16 x 16 cell, and one for the keypoints when the encoder reads any."""
    return (image_size // STRIDE) ** 2 + (1 if keypoints else 0)


def camera_feature(spec: EmbodimentSpec) -> str:
    """The dataset and observation feature a pixel policy reads for this robot: its first camera."""
    if not spec.cameras:
        raise ValueError(f"{spec.name}: a pixel policy reads the robot's first camera, and its spec has none")
    return IMAGE_PREFIX + spec.cameras[0].name


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, C, H, W) pictures, each shifted by a random whole number of pixels in [-pad, pad] along
    each axis (replicate-padded, then cropped back to H x W), with torch's global generator."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate").permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    dy, dx = (torch.randint(0, 2 * pad + 1, (b, 1), device=x.device) for _ in range(2))
    rows = dy + torch.arange(h, device=x.device)  # (B, H)
    cols = dx + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class VisionEncoder(nn.Module):
    """Shared: a square uint8 image → one token per 16 x 16 cell (see the module docstring)."""

    def __init__(self, d_model: int, image_size: int, image_shift: int = 0, keypoints: int = 0,
                 colour_film: bool = False):
        super().__init__()
        self.image_shift = image_shift
        self.keypoints = keypoints
        # FiLM per layer from the instruction's named colours (`data.targets.named_colours`), zero at
        # the start: a scale and shift of each feature map (RT-1 conditions its encoder the same way)
        self.film = (nn.ModuleList(nn.Linear(COLOUR_DIM, 2 * c) for c in CHANNELS) if colour_film else None)
        for layer in self.film or ():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        layers, c_in = [], 3
        for i, c_out in enumerate(CHANNELS):
            kernel = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2), nn.GELU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.project = nn.Linear(c_in, d_model)
        self.image_size = image_size
        self.cells = nn.Parameter(torch.randn(n_image_tokens(image_size, keypoints), d_model) * 0.02)
        if keypoints:  # spatial softmax at stride 4: where each of K feature maps peaks, as one token
            self.keypoint_maps = nn.Conv2d(CHANNELS[KEYPOINT_LAYER], keypoints, 1)
            self.keypoint_project = nn.Linear(2 * keypoints, d_model)
            side = image_size // 2 ** (KEYPOINT_LAYER + 1)
            axis = torch.linspace(-1.0, 1.0, side)
            grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)  # (side², 2) y, x
            self.register_buffer("keypoint_grid", grid, persistent=False)

    def forward(self, images: torch.Tensor, colours: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, 3) uint8 (or float in [0, 255]), and with ``colour_film`` the (B, COLOUR_DIM)
        named colours of each picture's instruction → (B, (H/16)², D)."""
        if images.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"images of shape {tuple(images.shape[1:])}; this policy reads "
                             f"({self.image_size}, {self.image_size}, 3)")
        if self.film is not None and colours is None:
            raise ValueError("this encoder is conditioned on the instruction's named colours (colour_film): "
                             "pass them (data.targets.named_colours)")
        x = images.permute(0, 3, 1, 2).float().div(255.0).sub(PIXEL_MEAN).div(PIXEL_SCALE)
        if self.training and self.convs[0].weight.requires_grad:  # a frozen encoder's tokens are cached once
            x = random_shift(x, self.image_shift)
        mid = None
        for i in range(len(CHANNELS)):
            x = self.convs[2 * i](x)
            if self.film is not None:
                scale, shift = self.film[i](colours.to(x.dtype)).chunk(2, -1)
                x = x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            x = self.convs[2 * i + 1](x)  # GELU
            if i == KEYPOINT_LAYER:
                mid = x  # (B, C_k, H/4, W/4)
        cells = self.project(x.flatten(2).transpose(1, 2))  # x: (B, C, H/16, W/16)
        if not self.keypoints:
            return cells + self.cells
        weights = self.keypoint_maps(mid).flatten(2).softmax(-1)  # (B, K, (H/4)²)
        points = weights @ self.keypoint_grid  # (B, K, 2): each map's expected position in [-1, 1]
        return torch.cat([cells, self.keypoint_project(points.flatten(1))[:, None]], 1) + self.cells


class PixelStem(nn.Module):
    """One robot's stem for a pixel policy: its state token and its camera embedding."""

    def __init__(self, emb: EmbodimentConfig, d_model: int, image_size: int, keypoints: int = 0):
        super().__init__()
        self.state = nn.Sequential(nn.Linear(emb.state_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.camera = nn.Parameter(torch.zeros(d_model))
        self._n_image = n_image_tokens(image_size, keypoints)

    @property
    def n_tokens(self) -> int:
        return 1 + self._n_image

    def forward(self, state: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) normalized, (B, N, D) from the shared encoder → (B, 1 + N, D)."""
        return torch.cat([self.state(state)[:, None], image_tokens + self.camera], dim=1)


__all__ = ["PixelStem", "VisionEncoder", "camera_feature", "n_image_tokens", "random_shift"]
