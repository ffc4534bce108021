"""Fluid area per B-scan and fluid volume, in physical units only when the spacing is known."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._atomic import atomic_path

NL_PER_MM3 = 1000.0  # 1 mm^3 = 1 microlitre = 1000 nanolitres

AXES = ("between B-scans", "along depth", "along width")
# An OCT's pixels are micrometres apart (depth ~2-7 um, width ~5-15 um) and its B-scans tens to hundreds of
# micrometres: a spacing in mm above these is almost surely micrometres typed as millimetres.
MOST_PLAUSIBLE_MM = (10.0, 1.0, 1.0)


class SpacingUnknownError(ValueError):
    """Raised instead of reporting a physical figure computed from a guessed spacing."""


class SpacingError(ValueError):
    """A spacing that cannot be an OCT's (not a positive finite number, or micrometres typed as millimetres)."""


def check_spacing(
    spacing_mm: tuple[float | None, float | None, float | None],
) -> tuple[float | None, float | None, float | None]:
    """``spacing_mm`` (between B-scans, along depth, along width; ``None`` where unknown) if every known value is a
    plausible OCT spacing in millimetres: the one rule of the command line and the Quantify widget.

    Raises
    ------
    SpacingError
        For a value that is not a finite number above zero (it would give negative or zero volumes, or NaN), or
        one larger than an OCT's (``MOST_PLAUSIBLE_MM``: micrometres typed as millimetres), as one line.
    """
    if len(spacing_mm) != 3:
        raise SpacingError(
            f"the spacing has 3 values (between B-scans, along depth, along width), not {len(spacing_mm)}."
        )
    for value, axis, most in zip(spacing_mm, AXES, MOST_PLAUSIBLE_MM):
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.number))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise SpacingError(f"the spacing {axis} must be a number of millimetres above zero, not {value}.")
        if value > most:  # the hint fits the command line (mm typed) and the widget (um typed, converted)
            raise SpacingError(
                f"a spacing of {value:g} mm {axis} is larger than any OCT's (at most {most:g} mm): "
                f"{value:g} um would be {value / 1000:g} mm."
            )
    return tuple(None if value is None else float(value) for value in spacing_mm)  # type: ignore[return-value]


@dataclass(frozen=True)
class FluidSummary:
    """Fluid in one labels volume: pixels per B-scan, and the physical figures the spacing allows."""

    pixels_per_bscan: np.ndarray
    area_mm2_per_bscan: np.ndarray | None
    volume_mm3: float | None
    pixels_per_class: dict[int, np.ndarray] = field(default_factory=dict)  # label value -> pixels per B-scan
    pixel_area_mm2: float | None = None
    voxel_mm3: float | None = None

    @property
    def volume_nl(self) -> float | None:
        return None if self.volume_mm3 is None else self.volume_mm3 * NL_PER_MM3

    @property
    def total_pixels(self) -> int:
        return int(self.pixels_per_bscan.sum())


def fluid_pixels_per_bscan(labels: np.ndarray, fluid_classes: tuple[int, ...] | None = None) -> np.ndarray:
    """Count fluid pixels in each B-scan of ``labels[n_bscans, depth, width]`` (every class > 0 by default)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3:
        raise ValueError(f"labels must be one B-scan (2D) or a volume (3D), got shape {labels.shape}")
    is_fluid = labels > 0 if fluid_classes is None else np.isin(labels, fluid_classes)
    return is_fluid.reshape(labels.shape[0], -1).sum(axis=1)


def summarize_fluid(labels: np.ndarray, spacing_mm: tuple[float | None, float | None, float | None]) -> FluidSummary:
    """Fluid per B-scan (pixels, and mm^2 when depth and width spacing are known) and volume (mm^3 when the
    B-scan distance is known too). Unknown spacing gives ``None``, never a guess."""
    labels = np.asarray(labels)
    pixels = fluid_pixels_per_bscan(labels)
    dz, dy, dx = spacing_mm
    areas = pixels * (dy * dx) if dy is not None and dx is not None else None
    known = areas is not None and dz is not None
    volume = fluid_volume_mm3(labels, spacing_mm) if known else None
    classes = [int(c) for c in np.unique(labels) if c > 0]
    per_class = {c: fluid_pixels_per_bscan(labels, (c,)) for c in classes} if len(classes) > 1 else {}
    return FluidSummary(
        pixels, areas, volume, per_class, dy * dx if areas is not None else None, dz * dy * dx if known else None
    )


def fluid_volume_mm3(labels: np.ndarray, spacing_mm: tuple[float | None, float | None, float | None]) -> float:
    """Fluid volume as voxel count times voxel volume (each B-scan stands for a slab one B-scan distance thick).

    Raises
    ------
    SpacingUnknownError
        When any of the three spacings is unknown.
    """
    if any(s is None for s in spacing_mm):
        raise SpacingUnknownError("The scan's spacing is not known on every axis: enter it to get a volume in mm^3.")
    dz, dy, dx = spacing_mm
    return float(fluid_pixels_per_bscan(labels).sum()) * dz * dy * dx


def write_summary_csv(path: str | Path, summary: FluidSummary, sectors_mm3: dict[str, float] | None = None) -> Path:
    """One row per B-scan and a total row (fluid pixels, area, and pixels of each class when there are several),
    the volume, and the fluid volume per ETDRS sector when given. Physical columns are empty where the spacing
    is unknown, never filled with a guess."""
    path = Path(path)
    classes = sorted(summary.pixels_per_class)

    def area(pixels) -> str:
        return "" if summary.pixel_area_mm2 is None else f"{pixels * summary.pixel_area_mm2:.6g}"

    # written whole or not at all: a full disk leaves the previous file (or none), never an empty one
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "bscan",
                "fluid_pixels",
                "fluid_area_mm2",
                *(f"class_{c}_pixels" for c in classes),
                *(f"class_{c}_area_mm2" for c in classes),
            ]
        )
        for index, pixels in enumerate(summary.pixels_per_bscan):
            per_class = [int(summary.pixels_per_class[c][index]) for c in classes]
            writer.writerow([index, int(pixels), area(pixels), *per_class, *(area(p) for p in per_class)])
        totals = [int(summary.pixels_per_class[c].sum()) for c in classes]
        writer.writerow(
            ["total", summary.total_pixels, area(summary.total_pixels), *totals, *(area(p) for p in totals)]
        )
        writer.writerow([])
        writer.writerow(["measure", "value", "unit"])
        writer.writerow(["fluid volume", "" if summary.volume_mm3 is None else f"{summary.volume_mm3:.6g}", "mm3"])
        writer.writerow(["fluid volume", "" if summary.volume_nl is None else f"{summary.volume_nl:.6g}", "nL"])
        for c, pixels in zip(classes, totals):
            volume = "" if summary.voxel_mm3 is None else f"{pixels * summary.voxel_mm3:.6g}"
            writer.writerow([f"class {c} volume", volume, "mm3"])
        for sector, volume in (sectors_mm3 or {}).items():
            writer.writerow([f"ETDRS {sector}", f"{volume:.6g}", "mm3"])
    return path
