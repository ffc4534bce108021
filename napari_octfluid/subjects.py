"""A subject: one scanned eye with its expert labels, as training, evaluation and cross-validation take it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import annotated_bscans

Spacing = tuple[float | None, float | None, float | None]


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value; subjects compare by identity
class Subject:
    """Images and labels of one volume ``[Z, Y, X]`` (a 2D B-scan gains a Z axis), with what evaluation reports it
    under. Labels use ``labels.BACKGROUND``, ``labels.FLUID`` and ``labels.IGNORE`` (not annotated)."""

    name: str  # e.g. "duke_01", or a file's stem
    images: np.ndarray  # [Z, Y, X], any grey-level type
    labels: np.ndarray  # [Z, Y, X] uint8, the same shape
    second_grader: np.ndarray | None = None  # another expert's labels of the same B-scans, where known
    dataset: str = ""  # the group evaluation reports it under; "" means the name's prefix before "_" ("duke")
    spacing_mm: Spacing = (None, None, None)  # B-scan, depth, width; None where unknown

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        second = None if self.second_grader is None else np.asarray(self.second_grader)
        if images.ndim == 2 and labels.ndim == 2:
            images, labels = images[None], labels[None]
            second = second[None] if second is not None and second.ndim == 2 else second
        if images.shape != labels.shape:
            raise ValueError(f"{self.name}: images {images.shape} and labels {labels.shape} differ in shape")
        if second is not None and second.shape != labels.shape:
            raise ValueError(
                f"{self.name}: second grader's labels {second.shape} and labels {labels.shape} differ in shape"
            )
        if len(self.spacing_mm) != 3:
            raise ValueError(f"{self.name}: spacing_mm needs 3 values (B-scan, depth, width), got {self.spacing_mm!r}")
        # frozen: the normalised fields are set once, here, through object.__setattr__
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "second_grader", second)
        object.__setattr__(self, "dataset", self.dataset or self.name.split("_")[0])
        object.__setattr__(self, "spacing_mm", tuple(self.spacing_mm))

    def annotated_bscans(self) -> list[int]:
        """The B-scans with at least one annotated pixel: the ones training and evaluation use by default."""
        return annotated_bscans(self.labels)
