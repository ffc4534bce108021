"""Intensity normalisation: the one function that training and inference both use."""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5


def normalize_bscans(bscans: np.ndarray) -> np.ndarray:
    """Map each B-scan's 0.5th..99.5th intensity percentiles to 0..1 (float32, clipped).

    Per B-scan, so uint8, uint16 and float exports of any vendor land in the same range; NaN and inf
    (damaged pixels) become 0 and do not move the percentiles.
    """
    data = np.asarray(bscans, dtype=np.float32)
    squeeze = data.ndim == 2
    if squeeze:
        data = data[None]
    finite = np.isfinite(data)
    out = np.zeros_like(data)
    for index, (bscan, ok) in enumerate(zip(data, finite)):
        if not ok.any():
            continue
        low, high = np.percentile(bscan[ok], [LOW_PERCENTILE, HIGH_PERCENTILE])
        scale = high - low if high > low else 1.0
        out[index] = np.where(ok, np.clip((bscan - low) / scale, 0.0, 1.0), 0.0)
    return out[0] if squeeze else out
