"""Choosing a two-class model's decision threshold on its training B-scans.

The composite loss of the paper weighs missed fluid heavily (focal Tversky alpha = 0.7, batch-weighted BCE),
so its models find almost all fluid but also too much of it: on held-out subjects, recall ~0.93 for precision
~0.5-0.7 at the argmax. A threshold on the fluid probability trades these back; it is chosen on the training
data only, so that validation figures stay honest.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference import labels_and_fluid
from ..model import TransUNet
from .data import BscanSet

# up to 0.999: every fold of the first cross-validation chose 0.99, the old top of the grid
THRESHOLDS = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2)) + (0.97, 0.98, 0.99, 0.995, 0.998, 0.999)


def fluid_probabilities(model: TransUNet, data: BscanSet, device: torch.device) -> list[np.ndarray]:
    model.eval()
    out = []
    with torch.inference_mode():
        for image in data.images:
            logits = model(torch.from_numpy(image)[None, None].to(device)).float()
            out.append(labels_and_fluid(logits)[1][0].cpu().numpy())
    return out


def calibrate_threshold(model: TransUNet, data: BscanSet, ignore_index: int = 255,
                        device: torch.device = torch.device("cpu")) -> tuple[float, dict[float, float]]:
    """The threshold (from ``THRESHOLDS``) with the best pooled Dice on ``data``, and Dice for each one."""
    probabilities = fluid_probabilities(model, data, device)
    dice = {}
    for threshold in THRESHOLDS:
        tp = fp = fn = 0
        for probability, label in zip(probabilities, data.labels):
            predicted, reference, valid = probability > threshold, label == 1, label != ignore_index
            tp += int((predicted & reference & valid).sum())
            fp += int((predicted & ~reference & valid).sum())
            fn += int((~predicted & reference & valid).sum())
        dice[float(threshold)] = 2 * tp / max(2 * tp + fp + fn, 1)
    best = max(dice, key=dice.get)
    return best, dice
