"""Training pairs of B-scans and labels, and random crops that favour fluid (it is under 1 % of pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..preprocess import BscanError, check_bscans, normalize_bscans, padding_mask
from ..subjects import Subject


@dataclass
class BscanSet:
    """B-scans (normalised, float32) and labels (uint8, with ``IGNORE`` for unknown), each B-scan its own size."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    sources: list[str]  # "name[z]": the subject and B-scan each came from
    outside: list[np.ndarray] | None = None  # per B-scan, pixels that cannot be fluid (preprocess.padding_mask)

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_subjects(
        cls, subjects: Iterable[Subject], bscans: Sequence[Sequence[int] | None] | None = None
    ) -> "BscanSet":
        """The B-scans of ``subjects``: of subject i those in ``bscans[i]``, or where that (or ``bscans``) is None
        every B-scan with at least one annotated pixel, so that B-scans nobody labelled (all ``IGNORE``) are not
        learnt as background."""
        images, labels, sources, outside = [], [], [], []
        for index, subject in enumerate(subjects):
            try:
                volume = check_bscans(subject.images)
            except BscanError as error:
                raise BscanError(f"{subject.name}: {error}") from None
            wanted = bscans[index] if bscans is not None else None
            chosen = list(subject.annotated_bscans() if wanted is None else wanted)
            # both work per B-scan, so only the chosen ones need the time
            normalised, padding = normalize_bscans(volume[chosen]), padding_mask(volume[chosen])
            for position, z in enumerate(chosen):
                images.append(normalised[position])
                labels.append(subject.labels[z].astype(np.uint8))
                sources.append(f"{subject.name}[{z}]")
                outside.append(padding[position])
        return cls(images, labels, sources, outside)

    def summary(self) -> dict:
        fluid = [int((label == 1).sum()) for label in self.labels]
        return {
            "bscans": len(self),
            "with_fluid": int(sum(f > 0 for f in fluid)),
            "fluid_pixels": int(sum(fluid)),
            "sources": sorted({s.split("[")[0] for s in self.sources}),
        }


def random_crops(
    data: BscanSet,
    batch_size: int,
    crop: tuple[int, int],
    fluid_fraction: float,
    ignore_index: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of crops; ``fluid_fraction`` of them centred on a fluid pixel where the B-scan has one.
    B-scans smaller than the crop are padded with unknown labels."""
    height, width = crop
    images = np.zeros((batch_size, height, width), np.float32)
    labels = np.full((batch_size, height, width), ignore_index, np.uint8)
    for item in range(batch_size):
        index = int(rng.integers(len(data)))
        image, label = data.images[index], data.labels[index]
        rows, cols = label.shape
        fluid = np.flatnonzero(label == 1) if rng.random() < fluid_fraction else np.empty(0)
        if fluid.size:
            centre = divmod(int(fluid[rng.integers(fluid.size)]), cols)
            top = int(
                np.clip(centre[0] - height // 2 + rng.integers(-height // 4, height // 4 + 1), 0, max(rows - height, 0))
            )
            left = int(
                np.clip(centre[1] - width // 2 + rng.integers(-width // 4, width // 4 + 1), 0, max(cols - width, 0))
            )
        else:
            top, left = int(rng.integers(max(rows - height, 0) + 1)), int(rng.integers(max(cols - width, 0) + 1))
        patch = (slice(top, top + height), slice(left, left + width))
        h, w = image[patch].shape
        images[item, :h, :w] = image[patch]
        labels[item, :h, :w] = label[patch]
    return images, labels
