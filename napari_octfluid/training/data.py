"""Training pairs of B-scans and labels, and random crops that favour fluid (it is under 1 % of pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..preprocess import BscanError, check_bscans, normalize_bscans


@dataclass
class BscanSet:
    """B-scans (normalised, float32) and labels (uint8, with an ignore value), each B-scan its own size."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_volumes(cls, pairs: list[tuple[np.ndarray, np.ndarray, str]],
                     bscans: list[list[int] | None] | None = None) -> "BscanSet":
        """From (images[Z,Y,X], labels[Z,Y,X], name) volumes; ``bscans[i]`` chooses B-scans of volume i
        (None: every B-scan with any label)."""
        images, labels, sources = [], [], []
        for index, (volume, mask, name) in enumerate(pairs):
            volume, mask = np.asarray(volume), np.asarray(mask)
            if volume.ndim == 2 and mask.ndim == 2:
                volume, mask = volume[None], mask[None]
            if volume.shape != mask.shape:
                raise ValueError(f"{name}: images {volume.shape} and labels {mask.shape} differ in shape")
            try:
                volume = check_bscans(volume)
            except BscanError as error:
                raise BscanError(f"{name}: {error}") from None
            chosen = bscans[index] if bscans is not None and bscans[index] is not None else range(len(volume))
            normalised = normalize_bscans(volume)
            for z in chosen:
                images.append(normalised[z])
                labels.append(mask[z].astype(np.uint8))
                sources.append(f"{name}[{z}]")
        return cls(images, labels, sources)

    def summary(self) -> dict:
        fluid = [int((label == 1).sum()) for label in self.labels]
        return {"bscans": len(self), "with_fluid": int(sum(f > 0 for f in fluid)), "fluid_pixels": int(sum(fluid)),
                "sources": sorted({s.split("[")[0] for s in self.sources})}


def random_crops(data: BscanSet, batch_size: int, crop: tuple[int, int], fluid_fraction: float,
                 ignore_index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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
            top = int(np.clip(centre[0] - height // 2 + rng.integers(-height // 4, height // 4 + 1), 0,
                              max(rows - height, 0)))
            left = int(np.clip(centre[1] - width // 2 + rng.integers(-width // 4, width // 4 + 1), 0,
                               max(cols - width, 0)))
        else:
            top, left = int(rng.integers(max(rows - height, 0) + 1)), int(rng.integers(max(cols - width, 0) + 1))
        patch = (slice(top, top + height), slice(left, left + width))
        h, w = image[patch].shape
        images[item, :h, :w] = image[patch]
        labels[item, :h, :w] = label[patch]
    return images, labels
