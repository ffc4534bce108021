"""Choosing a two-class model's decision threshold on its training B-scans.

The composite loss of the paper weighs missed fluid heavily (focal Tversky alpha = 0.7, batch-weighted BCE),
so its models find almost all fluid but also too much of it: on held-out subjects, recall ~0.93 for precision
~0.5-0.7 at the argmax. A threshold on the fluid probability trades these back; it is chosen on the training
data only, so that validation figures stay honest.

The minimum lesion size (:mod:`napari_octfluid.min_lesion`) is chosen next to it, from the same probabilities, for
the figure a clinic feels first: fluid-free B-scans with any fluid predicted (``metrics.Agreement``'s false-alarm
rate). Among the sizes that keep the pooled Dice of the training B-scans within ``MAX_POOLED_DICE_COST`` of the
best size's, it takes the one with the fewest false alarms (the smallest on a tie). The bound stops it where the
model's real lesions start to go. Training B-scans understate the specks: a model is surer of the subjects it
learnt, so its specks there are fewer and smaller than on a new subject's. The earlier rule (the best mean
per-B-scan Dice with the fluid B-scans' mean Dice kept within 0.005) chose 60 pixels on every cross-validation
fold, and the held-out fluid-free B-scans still got fluid in 18 of 143 (0.126, folds 1-3). This rule, with the
bound at 0.002, chose 100, 100 and 60 on the same folds' training B-scans: 13 of 143 (0.091) on the held-out
ones, for at most 0.001 of their pooled Dice. On folds 4 and 5, trained after the bound was chosen: 7 of 69 (0.101)
against 10 (0.145), pooled Dice 0.800 either way (``docs/min_lesion_calibration.md``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference import forward_bscans
from ..labels import IGNORE, counts_against, pooled_counts
from ..metrics import Agreement, concatenated
from ..min_lesion import SIZES, remove_small_lesions
from ..model import TransUNet
from .data import BscanSet

# what the minimum lesion size may cost the pooled Dice of the training B-scans, against the best size's: chosen by
# cross-validation by subject (docs/min_lesion_calibration.md; 0.005 took the top of the grid on every fold and
# cost the held-out Duke subjects up to 0.02 of their Dice)
MAX_POOLED_DICE_COST = 0.002
# up to 0.999: every fold of the first cross-validation chose 0.99, the old top of the grid
THRESHOLDS = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2)) + (0.97, 0.98, 0.99, 0.995, 0.998, 0.999)


def fluid_probabilities(model: TransUNet, data: BscanSet, device: torch.device) -> list[np.ndarray]:
    """The fluid probability of every B-scan of ``data``, through prediction's forward pass and padding rule."""
    return [fluid for _, fluid in forward_bscans(model, data, device)]


def calibrate_threshold(
    model: TransUNet, data: BscanSet, ignore_index: int = IGNORE, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """The threshold (from ``THRESHOLDS``) with the best pooled Dice on ``data``, and Dice for each one."""
    return _best_threshold(fluid_probabilities(model, data, device), data.labels, ignore_index)


def _best_threshold(probabilities, labels, ignore_index: int = IGNORE) -> tuple[float, dict[float, float]]:
    dice = {}
    for threshold in THRESHOLDS:
        predictions = (probability > threshold for probability in probabilities)
        dice[float(threshold)] = float(pooled_counts(zip(predictions, labels), ignore_index).dice)
    best = max(dice, key=dice.get)
    return best, dice


def calibrate_min_lesion(
    predictions: list[np.ndarray], labels: list[np.ndarray], ignore_index: int = IGNORE
) -> tuple[int, dict[int, dict[str, float]]]:
    """The size (from ``min_lesion.SIZES``) with the fewest fluid-free B-scans left with fluid, among those whose
    pooled Dice of the thresholded ``predictions`` against ``labels`` is within ``MAX_POOLED_DICE_COST`` of the
    best size's (the smallest on a tie; B-scans with no annotated pixel left out); and, for each size, its pooled
    Dice and false-alarm rate (NaN where no B-scan is fluid-free)."""
    kept = [(p, r) for p, r in zip(predictions, labels) if (np.asarray(r) != ignore_index).any()]
    if not kept:
        return SIZES[0], {}
    scores = {}
    for size in SIZES:
        counts = [counts_against(remove_small_lesions(p, size), r, ignore_index) for p, r in kept]
        agreement = Agreement.from_confusion(concatenated(counts))
        scores[int(size)] = {"pooled_dice": agreement.pooled_dice, "false_alarm_rate": agreement.false_positive_rate}
    floor = max(score["pooled_dice"] for score in scores.values()) - MAX_POOLED_DICE_COST
    allowed = [size for size in scores if scores[size]["pooled_dice"] >= floor]
    best = min(allowed, key=lambda size: (np.nan_to_num(scores[size]["false_alarm_rate"]), size))
    return best, scores


def calibrate_model(
    model: TransUNet, data: BscanSet, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """Set ``model.decision_threshold`` to the one chosen on ``data`` (its training B-scans), and
    ``model.min_lesion_pixels`` to the size chosen at that threshold: the one place where a model is calibrated
    after training (octfluid train and calibrate, cross-validation, the loss study). Returns the threshold and the
    pooled Dice at each threshold tried; the sizes' scores are kept as ``model.min_lesion_scores``."""
    probabilities = fluid_probabilities(model, data, device)
    threshold, dice = _best_threshold(probabilities, data.labels)
    predictions = [(probability > threshold).astype(np.uint8) for probability in probabilities]
    model.decision_threshold = threshold
    model.min_lesion_pixels, model.min_lesion_scores = calibrate_min_lesion(predictions, data.labels)
    return threshold, dice


def calibrate_checkpoint(
    path, data: BscanSet, device: torch.device = torch.device("cpu")
) -> tuple[float, dict[float, float]]:
    """Calibrate the model saved at ``path`` on ``data`` and store the threshold (and the Dice figures behind it,
    as ``threshold_dice_on_training``) and the minimum lesion size (with its scores, as
    ``min_lesion_scores_on_training``) in the checkpoint, keeping everything else it holds."""
    from ..model import load_model, update_checkpoint

    model, _ = load_model(path)
    threshold, dice = calibrate_model(model, data, device)
    update_checkpoint(
        path,
        model,
        threshold_dice_on_training=dice,  # the threshold and the minimum size are the model's own fields
        min_lesion_scores_on_training=model.min_lesion_scores,
    )
    return threshold, dice
