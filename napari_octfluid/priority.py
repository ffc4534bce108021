"""Which B-scans to review first: per-B-scan estimates of how wrong the model's mask is.

The review queue uses :func:`mirrored_disagreement`: the model segments the scan again mirrored left-right (a
second forward pass, run after the mask is shown) and each B-scan's priority is 1 - Dice between the two masks. A
mask the model cannot reproduce on the mirror image is a mask to doubt. With the cleaning rules on (padding,
minimum lesion size), its mean rank correlation per subject with the real 1 - Dice was 0.89 on the four held-out
subjects and 0.61 on them made to look like an unaveraged scan of another device (the mean entropy used before:
0.36 and -0.24); its count of differing pixels (:func:`mask_disagreement`'s second value) ranks the error pixels
(0.91 and 0.56). ``benchmarks/bench_review_priority.py`` prints these, beside the single-pass estimates tried first
(``benchmarks/priority_candidates.py``).
"""

from __future__ import annotations

import numpy as np


def mask_disagreement(labels: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per B-scan of ``[Z, Y, X]``: 1 - Dice between the fluid of two masks (0 when neither has fluid), and the
    count of pixels where they differ."""
    a, b = as_bscans(labels) > 0, as_bscans(other) > 0
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


def as_bscans(volume: np.ndarray) -> np.ndarray:
    """``volume`` as ``[Z, Y, X]``: one 2D B-scan gains a Z axis."""
    volume = np.asarray(volume)
    return volume[None] if volume.ndim == 2 else volume
