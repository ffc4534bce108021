"""The minimum lesion size: predicted fluid regions smaller than this, in one B-scan, are specks and are removed.

Chosen on a model's training B-scans next to its decision threshold (:mod:`napari_octfluid.training.calibrate`),
stored in its checkpoint as ``min_lesion_pixels`` and applied by :func:`napari_octfluid.inference.predict`, so the
widget and the command line clean masks alike. 0 turns the rule off; checkpoints without the value (all written
before it existed) predict with it off, as they always did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OFF = 0
CHECKPOINT_KEY = "min_lesion_pixels"
# the sizes calibration tries: up to about a 12 x 12 pixel cyst, the smallest an expert marks on these scans
SIZES = (0, 5, 10, 15, 20, 30, 40, 60, 80, 100, 150)


def remove_small_lesions(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """``labels[Z, Y, X]`` (or one B-scan) with each B-scan's fluid regions under ``min_pixels`` pixels set to
    background, through the click tools' island removal (regions connected through edges and corners)."""
    from .correct import remove_islands  # scikit-image: only when the rule is on

    if min_pixels <= OFF:
        return labels
    volume = labels[None] if labels.ndim == 2 else labels
    # labelled only over the rows and columns that hold fluid: the same regions, a fraction of the pixels to label
    rows, columns = np.flatnonzero(volume.any(axis=(0, 2))), np.flatnonzero(volume.any(axis=(0, 1)))
    if rows.size == 0:
        return labels
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    cleaned = volume.copy()
    cleaned[box] = remove_islands(volume[box], int(min_pixels)).applied_to(volume[box])
    return cleaned[0] if labels.ndim == 2 else cleaned


def checked_min_lesion_pixels(value: Any, name: str) -> int:
    """A stored minimum lesion size as an int (``OFF`` when absent), or ``ValueError`` for anything that is not a
    non-negative whole number (a damaged or foreign checkpoint would otherwise fail inside prediction)."""
    if value is None:
        return OFF
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a 0-d tensor or numpy number
        value = value.item()
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())  # NaN and inf are not
    if isinstance(value, bool) or not whole or value < 0:
        raise ValueError(
            f"{name}: its {CHECKPOINT_KEY} is {value!r}, not a whole number of pixels: the file is damaged or "
            "was not written by octfluid."
        )
    return int(value)
