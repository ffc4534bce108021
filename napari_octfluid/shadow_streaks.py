"""Shadow streaks: predicted fluid that is a narrow vertical streak inside a vessel shadow is not fluid.

A retinal vessel shades the tissue under it: a dark vertical band from the vessel down through the retina. The
shipped weights call parts of such bands fluid (issue 18: under the ``vessel_shadows`` shift every fluid-free B-scan
got some fluid). Those false alarms have one shape: a region a few pixels wide and taller than wide, every column of
it in a band darker than the columns around it. Cysts are enclosed by tissue, and rounder or wider; on the project's
expert masks (20 subjects, 1.23 million fluid pixels in 1,462 regions) the rule removes none. It needs no training:
the shadow is found in the normalised B-scan the model saw, a column's mean against the median of its neighbours.
"""

from __future__ import annotations

import numpy as np

from .labels import FLUID

# a column is shadowed where its mean (over the whole depth, normalised) is below this share of the median column
# mean around it, over this many columns (wider than a vessel's shadow, 4 to 16 A-scans on Spectralis)
SHADOW_RATIO = 0.85
NEIGHBOUR_COLUMNS = 61
# a streak: at most this many columns wide, at least this many times as tall as wide, on shadowed columns for at
# least this share of its width
MAX_STREAK_WIDTH = 20
MIN_STREAK_ASPECT = 1.2
MIN_SHADOWED_SHARE = 0.8


def shadowed_columns(normalised: np.ndarray) -> np.ndarray:
    """``[Z, X]``: the columns of each normalised B-scan ``[Z, Y, X]`` that lie in a shadow band."""
    from scipy import ndimage

    means = np.asarray(normalised, np.float32).mean(axis=1)
    around = ndimage.median_filter(means, size=(1, NEIGHBOUR_COLUMNS), mode="nearest")
    return means < SHADOW_RATIO * around


def remove_shadow_streaks(labels: np.ndarray, normalised: np.ndarray) -> np.ndarray:
    """``labels[Z, Y, X]`` (or one B-scan) with the fluid regions that are streaks in a shadow band of the
    normalised B-scans ``normalised`` (same shape) set to background; regions connect through edges and corners,
    as the minimum lesion size counts them (:mod:`napari_octfluid.min_lesion`)."""
    from scipy import ndimage

    squeeze = labels.ndim == 2
    volume, images = (labels[None], normalised[None]) if squeeze else (labels, normalised)
    if not (volume == FLUID).any():
        return labels  # no fluid: no streak, and no shadow to look for
    shadowed = None  # found when a region first has a streak's shape: most fluid is cysts, and needs no look
    out = volume.copy()
    for z, bscan in enumerate(volume):
        fluid = bscan == FLUID
        rows, columns = np.flatnonzero(fluid.any(1)), np.flatnonzero(fluid.any(0))
        if rows.size == 0:
            continue  # most B-scans: nothing to label
        # labelled over the rows and columns that hold fluid only: the same regions, a fraction of the pixels
        top, left = rows[0], columns[0]
        within = (slice(top, rows[-1] + 1), slice(left, columns[-1] + 1))
        regions, _ = ndimage.label(fluid[within], structure=np.ones((3, 3), bool))
        for number, box in enumerate(ndimage.find_objects(regions), start=1):
            if box is None:
                continue
            height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
            streak = width <= MAX_STREAK_WIDTH and height >= MIN_STREAK_ASPECT * width
            if not streak:
                continue
            shadowed = shadowed_columns(images) if shadowed is None else shadowed
            if shadowed[z, box[1].start + left : box[1].stop + left].mean() >= MIN_SHADOWED_SHARE:
                out[z][within][box][regions[box] == number] = 0
    return out[0] if squeeze else out
