"""Where the fluid is: an en-face fluid map, the fovea, and fluid volume in the ETDRS grid (numpy/scipy only).

The ETDRS grid (Early Treatment Diabetic Retinopathy Study Research Group, Arch Ophthalmol 1985;103:1796-806)
is three rings centred on the fovea: the central subfield (diameter 1 mm), the inner ring (1-3 mm) and the outer
ring (3-6 mm); each ring but the central one is cut into superior, nasal, inferior and temporal quadrants by the
diagonals. No library we use computes it, so it is written here.

Orientation: the B-scans of a raster volume are horizontal lines stacked from one edge of the macula to the
other; which edge comes first depends on the device, so it is a parameter (``first_bscan``). Columns are taken
as seen in the fundus view (left of the image is the subject's right for both eyes), so that the nasal side is
on the right for a right eye (OD) and on the left for a left eye (OS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .labels import fluid_mask
from .quantify import SpacingUnknownError

RING_EDGES_MM = (0.5, 1.5, 3.0)  # radii of the central subfield, the inner and the outer ring
QUADRANTS = ("superior", "nasal", "inferior", "temporal")
SECTORS = ("central",) + tuple(f"inner {q}" for q in QUADRANTS) + tuple(f"outer {q}" for q in QUADRANTS)
OUTSIDE = "outside grid"


def enface_fluid_pixels(labels: np.ndarray, fluid_classes: tuple[int, ...] | None = None) -> np.ndarray:
    """Fluid pixels along each A-scan: an en-face map ``[n_bscans, width]`` of ``labels[Z, Y, X]``."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"an en-face map needs a labels volume [Z, Y, X], got shape {labels.shape}")
    is_fluid = fluid_mask(labels) if fluid_classes is None else np.isin(labels, fluid_classes)  # 255: not fluid
    return is_fluid.sum(axis=1)


def enface_fluid_thickness_mm(labels: np.ndarray, depth_spacing_mm: float | None) -> np.ndarray:
    """Fluid thickness along each A-scan in mm (``[Z, X]``)."""
    if depth_spacing_mm is None:
        raise SpacingUnknownError("The depth spacing is unknown: enter it to get fluid thickness in mm.")
    return enface_fluid_pixels(labels) * float(depth_spacing_mm)


def retina_thickness_pixels(images: np.ndarray, smoothing: float = 2.0) -> np.ndarray:
    """A rough retinal thickness per A-scan, in pixels (``[Z, X]``): from the inner limiting membrane (the first
    row a third of the way from the B-scan's dark vitreous level to its brightest level, top down) to the
    retinal pigment epithelium (the last such row, bottom up). Good enough to find the foveal pit, not a layer
    segmentation."""
    images = np.asarray(images, np.float32)
    if images.ndim != 3:
        raise ValueError(f"retina thickness needs a volume [Z, Y, X], got shape {images.shape}")
    thickness = np.zeros((images.shape[0], images.shape[2]), np.float32)
    for z, bscan in enumerate(images):
        # exports pad B-scans with saturated rows or columns (Spectralis: white bands); they are not retina
        saturated = bscan >= bscan.max()
        padding = saturated.all(axis=1)[:, None] | saturated.all(axis=0)[None, :]
        bscan = np.where(padding, np.median(bscan), bscan)
        smooth = ndimage.gaussian_filter(bscan, smoothing)
        low, high = np.percentile(smooth, (20, 99.5))
        bright = smooth > low + (high - low) / 3
        has_retina = bright.any(axis=0)
        top = bright.argmax(axis=0)
        bottom = len(bright) - 1 - bright[::-1].argmax(axis=0)
        thickness[z] = np.where(has_retina, bottom - top, 0)
    return thickness


@dataclass(frozen=True)
class Fovea:
    bscan: float  # B-scan index (may fall between B-scans)
    column: float  # A-scan index within the B-scan
    how: str  # "detected", "scan centre (...)" or "given"


def find_fovea(
    images: np.ndarray,
    spacing_mm: tuple[float | None, float | None, float | None],
    search_fraction: float = 0.6,
    min_pit_depth: float = 0.2,
) -> Fovea:
    """The fovea as the thinnest point of the smoothed retinal thickness map, searched in the central
    ``search_fraction`` of the scan (macular scans are centred near the fovea; the edges hold the optic disc
    and vessels). Smoothing spans about 0.3 mm so that single dark A-scans do not win.

    Edema often fills the foveal pit (DME), and then there is no pit to find: when the thinnest point is not at
    least ``min_pit_depth`` thinner than the median of the searched area, or lies on its border, the scan centre
    is returned instead (``how`` says which), and the user should click the fovea.
    """
    dz, _, dx = spacing_mm
    thickness = retina_thickness_pixels(images)
    sigma = (0.3 / dz if dz else 1.0, 0.3 / dx if dx else 5.0)
    smooth = ndimage.gaussian_filter(thickness, sigma, mode="nearest")
    n_z, n_x = smooth.shape
    margin_z, margin_x = (int(n * (1 - search_fraction) / 2) for n in (n_z, n_x))
    region = smooth[margin_z : n_z - margin_z or None, margin_x : n_x - margin_x or None]
    z, x = np.unravel_index(np.argmin(region), region.shape)
    median = float(np.median(region))
    pit_depth = (median - float(region[z, x])) / median if median > 0 else 0.0
    on_border = (z in (0, region.shape[0] - 1) and region.shape[0] > 2) or x in (0, region.shape[1] - 1)
    if pit_depth < min_pit_depth or on_border:
        return Fovea((n_z - 1) / 2, (n_x - 1) / 2, "scan centre (no foveal pit found)")
    return Fovea(float(z + margin_z), float(x + margin_x), "detected")


def sector_map(
    shape: tuple[int, int],
    spacing_mm: tuple[float | None, float | None, float | None],
    fovea: Fovea,
    laterality: str | None,
    first_bscan: str = "superior",
) -> np.ndarray:
    """The ETDRS sector of each A-scan (``[Z, X]`` of indices into ``SECTORS``, -1 outside the 6 mm grid)."""
    dz, dx = _en_face_spacing(spacing_mm)
    _check_first_bscan(first_bscan)
    z, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    up_mm = (fovea.bscan - z) * dz if first_bscan == "superior" else (z - fovea.bscan) * dz
    return _sectors_at(up_mm, (x - fovea.column) * dx, laterality)


def _sectors_at(up_mm: np.ndarray, right_mm: np.ndarray, laterality: str | None) -> np.ndarray:
    """The ETDRS sector (index into ``SECTORS``, -1 outside the grid) of points ``up_mm`` above and ``right_mm``
    right of the fovea on the en-face image."""
    radius = np.hypot(up_mm, right_mm)
    nasal_is_right = {"OD": True, "OS": False}.get((laterality or "").upper())
    toward_nasal = right_mm if nasal_is_right in (True, None) else -right_mm
    # quadrant by the diagonals: superior where up dominates, nasal where toward-nasal dominates, ...
    quadrant = np.where(
        np.abs(up_mm) >= np.abs(toward_nasal), np.where(up_mm >= 0, 0, 2), np.where(toward_nasal >= 0, 1, 3)
    )
    out = np.full(radius.shape, -1, np.int8)
    out[radius < RING_EDGES_MM[0]] = 0
    inner = (radius >= RING_EDGES_MM[0]) & (radius < RING_EDGES_MM[1])
    outer = (radius >= RING_EDGES_MM[1]) & (radius < RING_EDGES_MM[2])
    out[inner] = 1 + quadrant[inner]
    out[outer] = 5 + quadrant[outer]
    return out


def _en_face_spacing(spacing_mm: tuple[float | None, float | None, float | None]) -> tuple[float, float]:
    """The distances between B-scans and between A-scans (mm) the grid is placed by, or SpacingUnknownError."""
    dz, _, dx = spacing_mm
    if dz is None or dx is None:
        raise SpacingUnknownError(
            "The ETDRS grid needs the distance between B-scans and between A-scans: enter the spacing."
        )
    return dz, dx


def _check_first_bscan(first_bscan: str) -> None:
    if first_bscan not in ("superior", "inferior"):
        raise ValueError("first_bscan must be 'superior' or 'inferior'")


COVERAGE_STEP_MM = 0.01  # the en-face grid a sector's scanned share is measured on: 0.1 % of the central subfield


def etdrs_coverage(
    shape: tuple[int, int],
    spacing_mm: tuple[float | None, float | None, float | None],
    fovea: Fovea,
    laterality: str | None,
    first_bscan: str = "superior",
) -> dict[str, float]:
    """The share (0 to 1) of each ETDRS sector's area that the scan's en-face footprint (``shape`` = B-scans,
    A-scans; each pixel covering its spacing) covers. A volume of 25 B-scans 120 um apart spans 3 mm of the 6 mm
    grid: its outer superior and inferior sectors are barely scanned, and their fluid, 0 nL, is not a measurement
    of the sector. Measured on a ``COVERAGE_STEP_MM`` grid over the 6 mm disc (no library computes it)."""
    dz, dx = _en_face_spacing(spacing_mm)
    _check_first_bscan(first_bscan)
    half = (np.arange(round(RING_EDGES_MM[-1] / COVERAGE_STEP_MM)) + 0.5) * COVERAGE_STEP_MM
    steps = np.concatenate([-half[::-1], half])  # mirror-symmetric: no sector gains from rounding at a diagonal
    up_mm, right_mm = np.meshgrid(steps[::-1], steps, indexing="ij")
    sectors = _sectors_at(up_mm, right_mm, laterality)
    z = fovea.bscan - up_mm / dz if first_bscan == "superior" else fovea.bscan + up_mm / dz
    x = fovea.column + right_mm / dx
    scanned = (z >= -0.5) & (z <= shape[0] - 0.5) & (x >= -0.5) & (x <= shape[1] - 0.5)
    return {name: float(scanned[sectors == index].mean()) for index, name in enumerate(sector_names(laterality))}


def sector_names(laterality: str | None) -> tuple[str, ...]:
    """Sector names; without a known eye, nasal/temporal cannot be told apart and read right/left."""
    if (laterality or "").upper() in ("OD", "OS"):
        return SECTORS
    return tuple(name.replace("nasal", "right").replace("temporal", "left") for name in SECTORS)


def etdrs_fluid_volumes(
    labels: np.ndarray,
    spacing_mm: tuple[float | None, float | None, float | None],
    fovea: Fovea,
    laterality: str | None,
    first_bscan: str = "superior",
) -> dict[str, float]:
    """Fluid volume (mm^3) in each ETDRS sector and outside the grid; the values add up to the total volume."""
    dz, dy, dx = spacing_mm
    if dz is None or dy is None or dx is None:
        raise SpacingUnknownError("The ETDRS volumes need the spacing on all three axes: enter it.")
    voxels = enface_fluid_pixels(labels).astype(np.float64)
    sectors = sector_map(voxels.shape, spacing_mm, fovea, laterality, first_bscan)
    names = sector_names(laterality)
    volume = voxels * dz * dy * dx
    result = {name: float(volume[sectors == index].sum()) for index, name in enumerate(names)}
    result[OUTSIDE] = float(volume[sectors < 0].sum())
    return result
