"""Which B-scans to review first: per-B-scan estimates of how wrong the model's mask is.

The review queue uses :func:`mirrored_disagreement`: the model segments the scan again mirrored left-right (a
second forward pass, run after the mask is shown) and each B-scan's priority is 1 - Dice between the two masks. A
mask the model cannot reproduce on the mirror image is a mask to doubt. With the cleaning rules on (padding,
minimum lesion size), its mean rank correlation per subject with the real 1 - Dice was 0.89 on the four held-out
subjects and 0.61 on them made to look like an unaveraged scan of another device (the mean entropy used before:
0.36 and -0.24); its count of differing pixels (:func:`mask_disagreement`'s second value) ranks the error pixels
(0.91 and 0.56). ``benchmarks/bench_review_priority.py`` prints these.

The estimates below use the one probability map (no second pass) and were tried first:

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
speck on a fluid-free B-scan has Dice 0 and few wrong pixels), so the review queue offers both.
``benchmarks/bench_review_priority.py`` measures them against the experts.
"""

from __future__ import annotations

import numpy as np

# logit units; a plateau from 0.01 to 0.03 on the training subjects (mean rank correlation 0.78 with 1 - Dice),
# its middle taken. benchmarks/bench_review_priority.py --part train --temperatures ... reproduces the choice.
RELIABILITY_TEMPERATURE = 0.02
_EPS = 1e-7


def mask_disagreement(labels: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per B-scan of ``[Z, Y, X]``: 1 - Dice between the fluid of two masks (0 when neither has fluid), and the
    count of pixels where they differ."""
    a, b = _per_bscan(labels) > 0, _per_bscan(other) > 0
    both = (a & b).reshape(len(a), -1).sum(1)
    total = a.reshape(len(a), -1).sum(1) + b.reshape(len(b), -1).sum(1)
    dice_error = np.where(total == 0, 0.0, 1.0 - 2.0 * both / np.maximum(total, 1))
    return dice_error.astype(np.float64), (a ^ b).reshape(len(a), -1).sum(1).astype(np.float64)


def mirrored_disagreement(scan: np.ndarray, model, labels: np.ndarray, device: str = "auto", **predict_options):
    """Generator (the progress events of :func:`~napari_octfluid.inference.predict`) that segments ``scan``
    mirrored left-right with ``model`` and returns :func:`mask_disagreement` between ``labels`` (its mask as
    predicted, ``[Z, Y, X]``) and the mirrored mask mirrored back: (1 - Dice, differing pixels) per B-scan."""
    from .inference import predict

    mirrored = yield from predict(np.ascontiguousarray(np.asarray(scan)[..., ::-1]), model, device, **predict_options)
    return mask_disagreement(labels, mirrored.labels[..., ::-1])


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


def _per_bscan(volume: np.ndarray) -> np.ndarray:
    volume = np.asarray(volume)
    return volume[None] if volume.ndim == 2 else volume


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
    for z, (mask, probability) in enumerate(zip(_per_bscan(labels), _per_bscan(fluid_probability))):
        keep = np.ones(mask.shape, bool) if annotated is None else _per_bscan(annotated)[z]
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
    for z, (mask, probability) in enumerate(zip(_per_bscan(labels), _per_bscan(fluid_probability))):
        keep = np.ones(mask.shape, bool) if annotated is None else _per_bscan(annotated)[z]
        q = _decided(recentred_probability(probability, threshold), mask > 0)
        totals.append(float(np.where(mask > 0, 1.0 - q, q)[keep].sum()))
    return np.asarray(totals, np.float64)


def mean_entropy_bits(fluid_probability: np.ndarray) -> np.ndarray:
    """Mean binary entropy H(p) = -p log2 p - (1-p) log2 (1-p) of the fluid probability per B-scan, in bits per
    pixel: the review queue's order before :func:`expected_dice_error`, kept for the benchmarks' comparison."""
    scores = []
    for probability in _per_bscan(fluid_probability):
        p = np.clip(np.asarray(probability, np.float32), _EPS, 1 - _EPS)
        scores.append(float((-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).mean()))
    return np.asarray(scores, np.float64)
