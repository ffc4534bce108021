"""One-click corrections of a fluid mask (numpy only, no Qt, no napari).

Each tool takes the labels of a volume ``labels[Z, Y, X]`` (B-scan, depth, width) and returns a :class:`Correction`:
the new labels of the B-scans it changed and their indices, never touching its inputs, so that the GUI can write the
change back as one undoable step and the benchmark robot can count it as one action. Fluid is any label that is
neither ``BACKGROUND`` nor ``IGNORE``; pixels labelled ``IGNORE`` (not annotated) are never turned into fluid or
background, because nobody has said what they are.

Lesions are connected in a B-scan through edges and corners (a brush stroke or a thresholded prediction often
touches itself only diagonally, and a crumb left behind would cost another click). Across B-scans a lesion continues
only where it overlaps its neighbour pixel for pixel: B-scans lie far apart, so a diagonal step between them is not
evidence of one lesion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import remove_small_objects

from .labels import BACKGROUND, FLUID, IGNORE, fluid_mask

IN_BSCAN = np.ones((3, 3), bool)  # edges and corners
THROUGH_VOLUME = np.zeros((3, 3, 3), bool)
THROUGH_VOLUME[1] = True  # edges and corners within a B-scan
THROUGH_VOLUME[0, 1, 1] = THROUGH_VOLUME[2, 1, 1] = True  # the same pixel in the neighbouring B-scans

DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_SHARE = 0.25  # an added region larger than this share of the B-scan is a flood, not a lesion
DEFAULT_MIN_ISLAND = 20


@dataclass(frozen=True)
class Correction:
    """What a tool did: ``labels[i]`` are the new labels of B-scan ``bscans[i]`` (uint8, shape (n, Y, X)); no
    B-scans when nothing changed, and ``message`` says what was done or why nothing was."""

    bscans: tuple[int, ...]
    labels: np.ndarray
    message: str
    flooded: bool = False  # add_lesion refused a region larger than its limit (widen/narrow keeps the last one)

    @property
    def changed(self) -> bool:
        return bool(self.bscans)

    def applied_to(self, volume: np.ndarray) -> np.ndarray:
        """A copy of ``volume`` with this correction written into it."""
        result = np.array(volume, copy=True)
        if self.bscans:
            result[list(self.bscans)] = self.labels
        return result


def _volume(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a volume (B-scan, depth, width), got shape {labels.shape}")
    return labels


def _bscan_index(labels: np.ndarray, bscan: int) -> int:
    if not 0 <= bscan < len(labels):
        raise IndexError(f"B-scan {bscan} is outside the volume's {len(labels)} B-scans")
    return int(bscan)


def _point(labels: np.ndarray, point) -> tuple[int, int, int]:
    z, y, x = (int(round(float(c))) for c in point)
    if not all(0 <= c < n for c, n in zip((z, y, x), labels.shape)):
        raise IndexError(f"point {tuple(point)} is outside the labels of shape {labels.shape}")
    return z, y, x


def _nothing(labels: np.ndarray, message: str, flooded: bool = False) -> Correction:
    return Correction((), np.empty((0, *labels.shape[1:]), labels.dtype), message, flooded)


def _collect(labels: np.ndarray, new_bscans: dict[int, np.ndarray], message: str, unchanged: str) -> Correction:
    """The Correction holding those of ``new_bscans`` (B-scan index: new labels) that differ from ``labels``."""
    changed = {z: new for z, new in new_bscans.items() if not np.array_equal(labels[z], new)}
    if not changed:
        return _nothing(labels, unchanged)
    return Correction(tuple(changed), np.stack(list(changed.values())).astype(labels.dtype), message)


def remove_lesion(labels: np.ndarray, point, through_volume: bool = False) -> Correction:
    """Remove the lesion at ``point`` (B-scan, row, column): the fluid connected to it becomes background, in that
    B-scan only, or with ``through_volume`` in every B-scan the lesion continues into. Clicking background or
    ``IGNORE`` removes nothing."""
    labels = _volume(labels)
    z, y, x = _point(labels, point)
    if not fluid_mask(labels[z, y, x]):
        return _nothing(labels, "No fluid under the click: nothing removed.")
    if through_volume:
        components, _ = ndimage.label(fluid_mask(labels), structure=THROUGH_VOLUME)
        lesion = components == components[z, y, x]
        touched = np.flatnonzero(lesion.any(axis=(1, 2)))
        new = np.where(lesion[touched], BACKGROUND, labels[touched]).astype(labels.dtype)
        return Correction(
            tuple(int(b) for b in touched),
            new,
            f"Removed a lesion of {int(lesion.sum())} pixels through {len(touched)} B-scan(s).",
        )
    components, _ = ndimage.label(fluid_mask(labels[z]), structure=IN_BSCAN)
    lesion = components == components[y, x]
    new = np.where(lesion, BACKGROUND, labels[z]).astype(labels.dtype)
    return Correction((z,), new[None], f"Removed a lesion of {int(lesion.sum())} pixels from B-scan {z}.")


def add_lesion(
    labels: np.ndarray,
    probability: np.ndarray,
    point,
    threshold: float = DEFAULT_THRESHOLD,
    max_share: float = DEFAULT_MAX_SHARE,
    value: int = FLUID,
) -> Correction:
    """Add the lesion the probability map supports at ``point`` (B-scan, row, column): the region of the B-scan
    where ``probability >= threshold`` that is connected to the click becomes ``value``. A lower threshold widens the
    region, a higher one narrows it. Background becomes fluid; fluid already there keeps its label, and ``IGNORE``
    pixels are neither added nor crossed. A region larger than ``max_share`` of the B-scan is refused (the message
    says so), because a click should add a lesion, not flood the B-scan."""
    labels = _volume(labels)
    probability = np.asarray(probability)
    if probability.shape != labels.shape:
        raise ValueError(f"probability {probability.shape} and labels {labels.shape} differ in shape")
    z, y, x = _point(labels, point)
    if labels[z, y, x] == IGNORE:
        return _nothing(labels, "The click is on pixels marked not annotated: nothing added.")
    here = float(probability[z, y, x])
    if here < threshold:
        digits = 2 if round(here, 2) != round(threshold, 2) else 3  # never "0.98, below the threshold 0.98"
        return _nothing(
            labels,
            f"Fluid probability at the click is {here:.{digits}f}, below the threshold {threshold:.{digits}f}: "
            "lower it.",
        )
    supported = (probability[z] >= threshold) & (labels[z] != IGNORE)
    components, _ = ndimage.label(supported, structure=IN_BSCAN)
    region = components == components[y, x]
    share = region.sum() / region.size
    if share > max_share:
        return _nothing(
            labels,
            f"At threshold {threshold:.2f} the region covers {share:.0%} of the B-scan (limit {max_share:.0%}): "
            f"nothing added; raise the threshold.",
            flooded=True,
        )
    new = np.where(region & (labels[z] == BACKGROUND), value, labels[z]).astype(labels.dtype)
    if np.array_equal(new, labels[z]):
        return _nothing(labels, "The region at the click is already fluid: nothing added.")
    added = int((new != labels[z]).sum())
    return Correction((z,), new[None], f"Added {added} pixels of fluid at threshold {threshold:.2f} in B-scan {z}.")


def _bscans(labels: np.ndarray, bscans) -> list[int]:
    return list(range(len(labels))) if bscans is None else sorted({_bscan_index(labels, b) for b in bscans})


def remove_islands(labels: np.ndarray, min_pixels: int = DEFAULT_MIN_ISLAND, bscans=None) -> Correction:
    """Remove the islands of fluid smaller than ``min_pixels`` pixels, each B-scan on its own, in ``bscans``
    (indices; every B-scan when None)."""
    labels = _volume(labels)
    new = {}
    for z in _bscans(labels, bscans):
        fluid = fluid_mask(labels[z])
        # max_size is the size of the largest island removed: islands of min_pixels or more stay
        kept = remove_small_objects(fluid, max_size=max(int(min_pixels) - 1, 0), connectivity=2)
        new[z] = np.where(fluid & ~kept, BACKGROUND, labels[z])
    return _collect(
        labels, new, f"Removed islands under {min_pixels} pixels.", f"No islands under {min_pixels} pixels."
    )


def fill_holes(labels: np.ndarray, bscans=None, value: int = FLUID) -> Correction:
    """Fill the holes in the fluid of each B-scan in ``bscans`` (indices; every B-scan when None): background
    enclosed by fluid in the B-scan becomes ``value``; ``IGNORE`` pixels in a hole stay as they are."""
    labels = _volume(labels)
    new = {}
    for z in _bscans(labels, bscans):
        filled = ndimage.binary_fill_holes(fluid_mask(labels[z]))
        new[z] = np.where(filled & (labels[z] == BACKGROUND), value, labels[z])
    return _collect(labels, new, "Filled the holes in the fluid.", "No holes to fill.")


def copy_neighbour(labels: np.ndarray, bscan: int, source: int) -> Correction:
    """Start B-scan ``bscan`` from the mask of B-scan ``source`` (usually the one before or after): each of its
    pixels takes the source's label, except where either B-scan is ``IGNORE`` (not annotated stays so, and a pixel
    nobody annotated in the source says nothing about this one)."""
    labels = _volume(labels)
    bscan = _bscan_index(labels, bscan)
    if not 0 <= source < len(labels):
        return _nothing(labels, f"There is no B-scan {source} to copy from.")
    target, origin = labels[bscan], labels[int(source)]
    new = np.where((target != IGNORE) & (origin != IGNORE), origin, target)
    return _collect(
        labels,
        {bscan: new},
        f"Copied the mask of B-scan {source} into B-scan {bscan}.",
        f"B-scan {bscan} already holds the mask of B-scan {source}.",
    )
