"""Loss values against the predicted fluid probability of one pixel, for the explorer (as in Figure 1 of
Hossain, Paplinski & Betts 2019)."""

from __future__ import annotations

import numpy as np
import torch

from .base import SegmentationLoss


def loss_curve(loss: SegmentationLoss, fluid_probability: np.ndarray, target_class: int) -> np.ndarray:
    """The loss of a one-pixel B-scan whose model gives ``fluid_probability``, for a fluid (1) or background (0)
    pixel. Region losses on one pixel show their per-pixel behaviour, as the seed's figure does."""
    p = torch.as_tensor(np.clip(fluid_probability, 1e-6, 1 - 1e-6), dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1).view(-1, 2, 1, 1)
    target = torch.full((1, 1, 1), int(target_class))
    loss = loss.double()
    with torch.no_grad():
        return np.array([float(loss(logits[i : i + 1], target)) for i in range(len(p))])
