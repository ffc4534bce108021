"""The one in-memory form of an OCT scan that every part of octfluid passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

AXES = ("bscan", "depth", "width")  # Z, Y, X: B-scan index, axial depth, lateral position
MM_PER_UM = 1e-3
MAX_LABEL_CLASSES = 15  # a mask file holds class indices; OCT intensities range far wider


@dataclass
class OctVolume:
    """An OCT volume as B-scans, with its physical spacing and what the file said about it.

    Attributes
    ----------
    data : np.ndarray
        Always 3D, ``(n_bscans, depth, width)``; a single B-scan has ``n_bscans == 1``.
    spacing_mm : tuple of (float or None)
        Distance between neighbouring samples along (B-scan, depth, width) in millimetres;
        ``None`` where the file does not say (a guess is never stored as a fact).
    meta : dict
        Source file, device, laterality, acquisition date, ... when known.
    source_ndim : int
        2 when the file held a single 2D B-scan, so outputs can keep the input's shape.
    """

    data: np.ndarray
    spacing_mm: tuple[float | None, float | None, float | None] = (None, None, None)
    meta: dict[str, Any] = field(default_factory=dict)
    source_ndim: int = 3

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"OctVolume needs (n_bscans, depth, width) data, got shape {self.data.shape}")
        if len(self.spacing_mm) != 3:
            raise ValueError(f"spacing_mm needs 3 values (B-scan, depth, width), got {self.spacing_mm!r}")
        self.spacing_mm = tuple(_valid_spacing(s) for s in self.spacing_mm)  # type: ignore[assignment]

    @property
    def n_bscans(self) -> int:
        return int(self.data.shape[0])

    @property
    def name(self) -> str:
        source = self.meta.get("source")
        return Path(source).stem if source else "scan"

    @property
    def spacing_known(self) -> tuple[bool, bool, bool]:
        return tuple(s is not None for s in self.spacing_mm)  # type: ignore[return-value]

    @property
    def is_labels(self) -> bool:
        """Whether the file holds a segmentation rather than intensities: written by octfluid as labels, or
        small non-negative integers only (an expert mask), which no OCT intensity image is."""
        if self.meta.get("octfluid_kind") in ("labels", "image"):
            return self.meta["octfluid_kind"] == "labels"
        return self.data.dtype.kind in "ui" and int(self.data.min()) >= 0 and int(self.data.max()) <= MAX_LABEL_CLASSES

    def require_scan(self) -> "OctVolume":
        """This volume, or :class:`OctReadError` where its file holds labels (a mask) rather than OCT intensities:
        segmented as a scan, a mask came back "no fluid", as a healthy eye."""
        from .errors import OctReadError

        if not self.is_labels:
            return self
        low, high = (self.data.min(), self.data.max()) if self.data.size else (0, 0)
        if low != high:  # a blank image is refused as such by preprocess.check_bscans, after its shape
            raise OctReadError(
                self.meta.get("source") or "scan",
                f"holds labels (values {low:g} to {high:g}), not OCT intensities.",
                "Give the scan the mask was drawn on.",
            )
        return self

    def scale_um(self) -> tuple[float, float, float]:
        """Micrometres per pixel on each axis for napari, 1.0 where unknown (see :meth:`units`)."""
        return tuple(s / MM_PER_UM if s is not None else 1.0 for s in self.spacing_mm)  # type: ignore[return-value]

    def units(self) -> tuple[str, str, str]:
        """napari's unit per axis: micrometres where the spacing is known, pixels elsewhere."""
        return tuple("micrometer" if s is not None else "pixel" for s in self.spacing_mm)  # type: ignore[return-value]

    def as_source_shape(self, array: np.ndarray) -> np.ndarray:
        """Give a per-voxel result (labels, probabilities) the shape the input file had."""
        return array[0] if self.source_ndim == 2 else array


def _valid_spacing(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    # Vendors write 0 for "not applicable" (e.g. the B-scan distance of a single line scan).
    if not np.isfinite(value) or value <= 0:
        return None
    return value
