"""Choosing a two-class model's decision threshold on its training B-scans.

The composite loss of the paper weighs missed fluid heavily (focal Tversky alpha = 0.7, batch-weighted BCE),
so its models find almost all fluid but also too much of it: on held-out subjects, recall ~0.93 for precision
~0.5-0.7 at the argmax. A threshold on the fluid probability trades these back; it is chosen on the training
data only, so that validation figures stay honest.

The minimum lesion size (:mod:`napari_octfluid.min_lesion`) is chosen next to it, from the same probabilities: the
size with the best mean per-B-scan Dice over every training B-scan, where a fluid-free B-scan scores 1 when nothing is
predicted in it and 0 when anything is (``metrics.Confusion.dice``), among the sizes that cost the B-scans with fluid
at most ``MAX_FLUID_DICE_COST`` of their mean Dice. The first figure weighs specks on healthy B-scans against
lesions lost, B-scan by B-scan (pooled Dice hardly sees either), but alone it keeps rising with the size as long
as healthy B-scans gain more than fluid ones lose; the bound stops it where the model's real lesions start to go.
On the shipped model's 344 training B-scans it chose 40 pixels: the mean per-B-scan Dice rose from 0.640 to 0.779
for 0.002 of the fluid B-scans' mean Dice (0.690 to 0.688); 60 pixels would have cost 0.008.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference import forward_bscans
from ..labels import FLUID, IGNORE, counts_against, pooled_counts
from ..min_lesion import SIZES, remove_small_lesions
from ..model import TransUNet
from .data import BscanSet

# what the minimum lesion size may cost the mean Dice of the training B-scans that hold fluid
MAX_FLUID_DICE_COST = 0.005
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
    """The size (from ``min_lesion.SIZES``; the smallest on a tie) with the best mean per-B-scan Dice of the
    thresholded ``predictions`` against ``labels`` over every B-scan with annotated pixels, among those that lower
    the mean Dice of the B-scans with fluid by at most ``MAX_FLUID_DICE_COST``; and both means for each size."""
    kept = [(p, r) for p, r in zip(predictions, labels) if (np.asarray(r) != ignore_index).any()]
    if not kept:
        return SIZES[0], {}
    has_fluid = np.array([(np.asarray(r) == FLUID).any() for _, r in kept])
    scores = {}
    for size in SIZES:
        dice = np.array([counts_against(remove_small_lesions(p, size), r, ignore_index).dice[0] for p, r in kept])
        fluid = float(dice[has_fluid].mean()) if has_fluid.any() else 1.0
        scores[int(size)] = {"mean_bscan_dice": float(dice.mean()), "fluid_bscan_dice": fluid}
    floor = scores[SIZES[0]]["fluid_bscan_dice"] - MAX_FLUID_DICE_COST
    allowed = [size for size in scores if scores[size]["fluid_bscan_dice"] >= floor]
    best = max(allowed, key=lambda size: (scores[size]["mean_bscan_dice"], -size))
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
