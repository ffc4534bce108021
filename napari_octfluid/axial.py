"""The axial pixel size a model was trained at, and B-scans resampled to it and back (issue 18: a scan from a device
with another axial sampling, such as a Cirrus' 1024 rows over 2 mm, collapses a model trained on Spectralis' 496).

A model sees depth in pixels: a cyst 40 um tall is 10 rows on the training scans and 20 on a scan with half the
axial pixel size. When a scan's file gives its axial spacing, prediction resamples each batch of B-scans to the
model's axial pixel size (``TransUNet.axial_spacing_mm``, stored in the checkpoint), segments it there, and brings
the mask (nearest) and the fluid probability (linear) back to the scan's own rows.

Resampling uses scikit-image's ``resize``, as :mod:`napari_octfluid.shifts` does: bilinear images (anti-aliased
when shrinking) and nearest labels on the same pixel centres, so a label stays on its tissue.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Heidelberg Spectralis' axial pixel size, 3.87 um: the SizeZ of a real Spectralis .vol of 496 x 768 pixels
# (/work/shared/data/vendor_samples/heyex_vol/octolyzer_Linescan_1.vol: 0.0038717 mm); the data README gives
# "roughly 3.9 um axial" for the Duke and UMN volumes (496 rows), whose TIFF files store no spacing. The shipped weights
# were trained on those scans: checkpoints that do not store their own axial pixel size were trained at this one.
SPECTRALIS_AXIAL_SPACING_MM = 0.00387
CHECKPOINT_KEY = "axial_spacing_mm"
# a fine-tuned model's axial pixel size for scans whose file gives none, fitted to the corrections it learnt from
# (training/axial_fit.py); absent for every other model, which predicts such scans at their own rows
FITTED_CHECKPOINT_KEY = "fitted_axial_spacing_mm"
# scans within this share of the model's axial pixel size are predicted as they are: a few percent of scale is
# within what the model saw across subjects, and resampling costs time and a little sharpness
TOLERANCE = 0.10


def checked_axial_spacing(value: Any, name: str, key: str = CHECKPOINT_KEY) -> float:
    """A stored axial pixel size in mm as a float (the Spectralis one when absent, as every checkpoint written
    before it was stored was trained on Spectralis scans), or ``ValueError`` for anything that is not a plausible
    OCT axial pixel size (0.1 to 100 um); ``key`` names the field in the message."""
    if value is None:
        return SPECTRALIS_AXIAL_SPACING_MM
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a 0-d tensor or numpy number
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1e-4 <= value <= 0.1:
        shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
        raise ValueError(f"{name}: its axial pixel size ({key}) must be 0.0001 to 0.1 mm, not {shown}.")
    return float(value)


def checked_fitted_axial_spacing(value: Any, name: str) -> float | None:
    """A stored fitted axial pixel size (:data:`FITTED_CHECKPOINT_KEY`) in mm, None when absent, or ``ValueError``
    as :func:`checked_axial_spacing` refuses."""
    if value is None:
        return None
    return checked_axial_spacing(value, name, FITTED_CHECKPOINT_KEY)


def scan_axial_spacing(model, scan_spacing_mm: float | None) -> float | None:
    """The axial pixel size prediction takes a scan to have: its file's, where it gives one; else the one fitted to
    the corrections ``model`` was fine-tuned on (``model.fitted_axial_spacing_mm``,
    :mod:`napari_octfluid.training.axial_fit`), for a model adapted to a device whose files give none; else None
    (the scan is predicted at its own rows). Only prediction's resampling uses it: no physical figure does."""
    if scan_spacing_mm is not None:
        return scan_spacing_mm
    return getattr(model, "fitted_axial_spacing_mm", None)


def model_axial_spacing(model) -> float:
    """The axial pixel size in mm ``model`` was trained at (Spectralis' for a model that does not say)."""
    return float(getattr(model, "axial_spacing_mm", None) or SPECTRALIS_AXIAL_SPACING_MM)


def model_rows(rows: int, scan_spacing_mm: float | None, model_spacing_mm: float) -> int:
    """How many rows a B-scan of ``rows`` rows at ``scan_spacing_mm`` has at the model's axial pixel size: ``rows``
    itself when the spacing is unknown or within :data:`TOLERANCE` of the model's."""
    if scan_spacing_mm is None or not np.isfinite(scan_spacing_mm) or scan_spacing_mm <= 0:
        return rows
    if abs(scan_spacing_mm / model_spacing_mm - 1.0) <= TOLERANCE:
        return rows
    return max(1, round(rows * scan_spacing_mm / model_spacing_mm))


def resample_rows(bscans: np.ndarray, rows: int, order: int) -> np.ndarray:
    """B-scans ``[N, Y, X]`` resampled to ``rows`` rows: ``order`` 1 (bilinear, float32, anti-aliased when
    shrinking) for images and probabilities, 0 (nearest, type kept) for labels and masks."""
    from skimage.transform import resize

    if bscans.shape[1] == rows:
        return bscans
    shape = (bscans.shape[0], rows, bscans.shape[2])
    if order == 0:
        return resize(bscans, shape, order=0, anti_aliasing=False, preserve_range=True).astype(bscans.dtype)
    data = np.asarray(bscans, np.float32)
    data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)  # NaN/inf are background (preprocess)
    shrinking = rows < bscans.shape[1]
    return resize(data, shape, order=1, anti_aliasing=shrinking, preserve_range=True).astype(np.float32)
