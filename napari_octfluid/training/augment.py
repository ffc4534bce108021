"""Augmentation on batches of normalised B-scans (torch): the paper's rotation, shift and crop, plus flips,
contrast/brightness/gamma jitter and Gaussian noise (the paper's robustness test)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    max_rotation_deg: float = 10.0
    max_shift: float = 0.05  # fraction of the crop
    contrast: tuple[float, float] = (0.8, 1.25)
    brightness: float = 0.1
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_probability: float = 0.5
    noise_sigma_max: float = 0.1  # in normalised intensity (0..1)


def augment(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: AugmentConfig,
    ignore_index: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly transform ``images[N,1,H,W]`` (0..1) and ``labels[N,H,W]`` alike; pixels that come from outside
    the B-scan after a rotation or shift are labelled ``ignore_index``."""
    n = images.shape[0]
    device = images.device

    def uniform(low, high, *shape):
        return torch.rand(*shape, generator=generator).to(device) * (high - low) + low

    if config.flip:
        flip = torch.rand(n, generator=generator).to(device) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        labels = torch.where(flip.view(-1, 1, 1), labels.flip(-1), labels)
    if config.max_rotation_deg or config.max_shift:
        angle = uniform(-config.max_rotation_deg, config.max_rotation_deg, n) * math.pi / 180
        shift = uniform(-config.max_shift, config.max_shift, n, 2) * 2
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # labels + 1 so that the zero padding marks pixels from outside as unknown
        moved = (
            F.grid_sample(
                (labels + 1).unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
            )
            .squeeze(1)
            .long()
        )
        labels = torch.where(moved == 0, torch.full_like(moved, ignore_index), moved - 1)
    contrast = uniform(*config.contrast, n, 1, 1, 1)
    brightness = uniform(-config.brightness, config.brightness, n, 1, 1, 1)
    gamma = uniform(*config.gamma, n, 1, 1, 1)
    images = ((images - 0.5) * contrast + 0.5 + brightness).clamp(0, 1) ** gamma
    if config.noise_probability:
        noisy = (torch.rand(n, generator=generator).to(device) < config.noise_probability).view(-1, 1, 1, 1)
        sigma = uniform(0, config.noise_sigma_max, n, 1, 1, 1)
        noise = torch.randn(images.shape, generator=generator).to(device) * sigma
        images = torch.where(noisy, images + noise, images)
    return images, labels
