"""Review priorities tried before the one octfluid uses (``napari_octfluid.priority.mirrored_disagreement``), kept
for ``bench_review_priority.py`` and ``bench_finetune.py`` to compare against: estimates from the fluid
probability of the one prediction (no second pass).

The shipped model calls fluid above a high decision threshold (0.98: its loss over-calls fluid), so its raw
probabilities are not calibrated and their entropy ranks B-scans by how much fluid boundary they hold, not by
error (rank correlation about -0.2 with 1 - Dice on held-out subjects). Both estimates below first move the
probability so that the decision threshold sits at 0.5 (a shift of the logit by logit(threshold), the way Platt
scaling, Platt 1999, recentres a score), then:

- :func:`expected_dice_error`, the *least reliable masks*: 1 - soft Dice between the mask and the recentred
  probability sharpened by a small temperature. It is large when much of a B-scan's fluid lies barely past the
  threshold, i.e. when a small change of the model would change the mask a lot; the temperature was chosen on the
  training subjects only;
- :func:`pixels_at_risk`, the *most pixels to fix*: the expected number of wrong pixels under the recentred
  probability (temperature 1).

They answer different questions (1 - Dice and error pixels are themselves uncorrelated across B-scans: a
speck on a fluid-free B-scan has Dice 0 and few wrong pixels). With the minimum lesion size removing the specks,
the first fell to a rank correlation of 0.37 with 1 - Dice on the held-out subjects, against 0.89 for the mirrored
pass (``bench_review_priority.py``), which the queue uses.
"""

from __future__ import annotations

import numpy as np

from napari_octfluid.priority import as_bscans

# logit units; a plateau from 0.01 to 0.03 on the training subjects (mean rank correlation 0.78 with 1 - Dice),
# its middle taken. benchmarks/bench_review_priority.py --part train --temperatures ... reproduces the choice.
RELIABILITY_TEMPERATURE = 0.02
_EPS = 1e-7


def recentred_probability(fluid_probability: np.ndarray, threshold: float | None, temperature: float = 1.0):
    """sigmoid((logit(p) - logit(threshold)) / temperature): 0.5 exactly at the decision threshold."""
    p = np.clip(np.asarray(fluid_probability, np.float64), _EPS, 1 - _EPS)
    t = 0.5 if threshold is None else min(max(float(threshold), _EPS), 1 - _EPS)
    logit = np.log(p / (1 - p)) - np.log(t / (1 - t))
    with np.errstate(over="ignore"):  # exp overflows to inf for very negative logits: the sigmoid is then 0
        return 1.0 / (1.0 + np.exp(-logit / temperature))


def _decided(soft: np.ndarray, fluid: np.ndarray) -> np.ndarray:
    """``soft`` with pixels past the threshold that the mask leaves out set to 0: prediction's cleaning rules
    removed them (specks under the minimum lesion size, padding), a decision about the mask, not the model's doubt
    (without this, every fluid-free B-scan that had a speck removed came first in the queue)."""
    return np.where(fluid | (soft <= 0.5), soft, 0.0)


def expected_dice_error(
    labels: np.ndarray,
    fluid_probability: np.ndarray,
    threshold: float | None,
    temperature: float = RELIABILITY_TEMPERATURE,
    annotated: np.ndarray | None = None,
) -> np.ndarray:
    """Per B-scan of ``[Z, Y, X]``: 1 - soft Dice between the mask (``labels > 0``) and the recentred, sharpened
    probability (+1 smoothing, so a B-scan without fluid and without doubt scores 0). ``annotated`` (bool, same
    shape) restricts the count to those pixels."""
    scores = []
    for z, (mask, probability) in enumerate(zip(as_bscans(labels), as_bscans(fluid_probability))):
        keep = np.ones(mask.shape, bool) if annotated is None else as_bscans(annotated)[z]
        fluid = (mask > 0) & keep
        soft = _decided(recentred_probability(probability, threshold, temperature), fluid) * keep
        scores.append(1.0 - (2.0 * soft[fluid].sum() + 1.0) / (fluid.sum() + soft.sum() + 1.0))
    return np.asarray(scores, np.float64)


def pixels_at_risk(
    labels: np.ndarray, fluid_probability: np.ndarray, threshold: float | None, annotated: np.ndarray | None = None
) -> np.ndarray:
    """Per B-scan of ``[Z, Y, X]``: the expected number of wrong pixels, sum over fluid pixels of 1 - q and over
    the others of q, q the recentred probability."""
    totals = []
    for z, (mask, probability) in enumerate(zip(as_bscans(labels), as_bscans(fluid_probability))):
        keep = np.ones(mask.shape, bool) if annotated is None else as_bscans(annotated)[z]
        q = _decided(recentred_probability(probability, threshold), mask > 0)
        totals.append(float(np.where(mask > 0, 1.0 - q, q)[keep].sum()))
    return np.asarray(totals, np.float64)


def mean_entropy_bits(fluid_probability: np.ndarray) -> np.ndarray:
    """Mean binary entropy H(p) = -p log2 p - (1-p) log2 (1-p) of the fluid probability per B-scan, in bits per
    pixel: the review queue's order before :func:`expected_dice_error`, kept for the benchmarks' comparison."""
    scores = []
    for probability in as_bscans(fluid_probability):
        p = np.clip(np.asarray(probability, np.float32), _EPS, 1 - _EPS)
        scores.append(float((-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).mean()))
    return np.asarray(scores, np.float64)
