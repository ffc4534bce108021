"""Choosing a two-class model's decision threshold on its training B-scans.

The composite loss of the paper weighs missed fluid heavily (focal Tversky alpha = 0.7, batch-weighted BCE),
so its models find almost all fluid but also too much of it: on held-out subjects, recall ~0.93 for precision
~0.5-0.7 at the argmax. A threshold on the fluid probability trades these back; it is chosen on the training
data only, so that validation figures stay honest.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference import forward_bscans
from ..labels import IGNORE, pooled_counts
from ..model import TransUNet
from .data import BscanSet

# up to 0.999: every fold of the first cross-validation chose 0.99, the old top of the grid
THRESHOLDS = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2)) + (0.97, 0.98, 0.99, 0.995, 0.998, 0.999)


def fluid_probabilities(model: TransUNet, data: BscanSet, device: torch.device) -> list[np.ndarray]:
    """The fluid probability of every B-scan of ``data``, through prediction's forward pass and padding rule."""
    return [fluid for _, fluid in forward_bscans(model, data, device)]


def calibrate_threshold(
    model: TransUNet, data: BscanSet, ignore_index: int = IGNORE, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """The threshold (from ``THRESHOLDS``) with the best pooled Dice on ``data``, and Dice for each one."""
    probabilities = fluid_probabilities(model, data, device)
    dice = {}
    for threshold in THRESHOLDS:
        predictions = (probability > threshold for probability in probabilities)
        dice[float(threshold)] = float(pooled_counts(zip(predictions, data.labels), ignore_index).dice)
    best = max(dice, key=dice.get)
    return best, dice


def calibrate_model(
    model: TransUNet, data: BscanSet, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """Set ``model.decision_threshold`` to the one chosen on ``data`` (its training B-scans): the one place where a
    model is calibrated after training (octfluid train and calibrate, cross-validation, the loss study). Returns the
    threshold and the pooled Dice at each threshold tried."""
    threshold, dice = calibrate_threshold(model, data, device=device)
    model.decision_threshold = threshold
    return threshold, dice


def calibrate_checkpoint(
    path, data: BscanSet, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """Calibrate the model saved at ``path`` on ``data`` and store the threshold (and the Dice figures behind it,
    as ``threshold_dice_on_training``) in the checkpoint, keeping everything else it holds."""
    from ..model import load_model, update_checkpoint

    model, _ = load_model(path)
    threshold, dice = calibrate_model(model, data, device)
    update_checkpoint(path, model, threshold_dice_on_training=dice)
    return threshold, dice
