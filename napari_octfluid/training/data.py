"""Training pairs of B-scans and labels, and random crops that favour fluid (it is under 1 % of pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..axial import model_rows, resample_rows
from ..preprocess import BscanError, check_bscans, normalize_bscans, padding_mask
from ..subjects import Subject
from .randomise import RandomiseConfig, randomised_crop


@dataclass
class BscanSet:
    """B-scans (normalised, float32) and labels (uint8, with ``IGNORE`` for unknown), each B-scan its own size;
    with the raw B-scans they came from where domain randomisation needs them (:mod:`.randomise`)."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    sources: list[str]  # "name[z]": the subject and B-scan each came from
    outside: list[np.ndarray] | None = None  # per B-scan, pixels that cannot be fluid (preprocess.padding_mask)
    raw: list[np.ndarray] | None = None  # per B-scan, as the file has it (its type and grey levels), same grid
    datasets: list[str] | None = None  # per B-scan, the dataset of its subject (Subject.dataset: "duke", "umn")

    def __len__(self) -> int:
        return len(self.images)

    def sampling_probabilities(self, dataset_weights: dict[str, float] | None) -> np.ndarray | None:
        """How likely each B-scan is to be drawn for a crop when a B-scan of dataset ``d`` is drawn
        ``dataset_weights[d]`` times as often as one of a dataset the weights leave out; None (uniform) without
        weights. A weight for a dataset none of the B-scans belongs to is an error, not a silent no-op."""
        if not dataset_weights:
            return None
        if self.datasets is None:
            raise ValueError("dataset weights need the dataset of each B-scan: build the data with from_subjects")
        present = sorted(set(self.datasets))
        for dataset, weight in dataset_weights.items():
            if dataset not in present:
                raise ValueError(
                    f"dataset_weights names {dataset!r}, but the training B-scans come from {', '.join(present)}"
                )
            if not (np.isfinite(weight) and weight > 0):
                raise ValueError(f"dataset_weights[{dataset!r}] is {weight}: give a positive number")
        weights = np.array([dataset_weights.get(dataset, 1.0) for dataset in self.datasets], np.float64)
        return weights / weights.sum()

    @classmethod
    def from_subjects(
        cls,
        subjects: Iterable[Subject],
        bscans: Sequence[Sequence[int] | None] | None = None,
        axial_spacing_mm: float | None = None,
    ) -> "BscanSet":
        """The B-scans of ``subjects``: of subject i those in ``bscans[i]``, or where that (or ``bscans``) is None
        every B-scan with at least one annotated pixel, so that B-scans nobody labelled (all ``IGNORE``) are not
        learnt as background. With ``axial_spacing_mm`` (the model's axial pixel size,
        :func:`~napari_octfluid.axial.model_axial_spacing`), a subject whose axial spacing is known and differs
        from it is resampled to it, as prediction resamples a scan (:mod:`~napari_octfluid.axial`): its padding
        found on its own rows and carried over with nearest neighbour, as prediction does it."""
        images, labels, sources, outside, raw, datasets = [], [], [], [], [], []
        for index, subject in enumerate(subjects):
            try:
                volume = check_bscans(subject.images)
            except BscanError as error:
                raise BscanError(f"{subject.name}: {error}") from None
            wanted = bscans[index] if bscans is not None else None
            chosen = list(subject.annotated_bscans() if wanted is None else wanted)
            # both work per B-scan, so only the chosen ones need the time
            chosen_bscans, chosen_labels = volume[chosen], subject.labels[chosen].astype(np.uint8)
            padding = padding_mask(chosen_bscans)
            rows = volume.shape[1]
            if axial_spacing_mm is not None:
                rows = model_rows(rows, _axial_spacing(subject), axial_spacing_mm)
            if rows != volume.shape[1]:
                chosen_bscans = resample_rows(chosen_bscans, rows, order=1)
                chosen_labels = resample_rows(chosen_labels, rows, order=0)
                padding = resample_rows(padding, rows, order=0)
            normalised = normalize_bscans(chosen_bscans, padding)
            for position, z in enumerate(chosen):
                images.append(normalised[position])
                labels.append(chosen_labels[position])
                sources.append(f"{subject.name}[{z}]")
                outside.append(padding[position])
                raw.append(chosen_bscans[position])
                datasets.append(subject.dataset)
        return cls(images, labels, sources, outside, raw, datasets)

    def summary(self) -> dict:
        fluid = [int((label == 1).sum()) for label in self.labels]
        return {
            "bscans": len(self),
            "with_fluid": int(sum(f > 0 for f in fluid)),
            "fluid_pixels": int(sum(fluid)),
            "sources": sorted({s.split("[")[0] for s in self.sources}),
        }


def _axial_spacing(subject: Subject) -> float | None:
    return subject.spacing_mm[1] if subject.spacing_mm is not None else None


def random_crops(
    data: BscanSet,
    batch_size: int,
    crop: tuple[int, int],
    fluid_fraction: float,
    ignore_index: int,
    rng: np.random.Generator,
    randomise: RandomiseConfig | None = None,
    probabilities: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of crops; ``fluid_fraction`` of them centred on a fluid pixel where the B-scan has one.
    B-scans smaller than the crop are padded with unknown labels. With ``randomise`` (and the raw B-scans in
    ``data``), each crop is cut from its raw B-scan made to look like another device (:mod:`.randomise`).
    B-scans are drawn uniformly, or each with its share of ``probabilities``
    (:meth:`BscanSet.sampling_probabilities`)."""
    if randomise is not None and data.raw is None:
        raise ValueError("domain randomisation needs the raw B-scans: build the data with BscanSet.from_subjects")
    height, width = crop
    images = np.zeros((batch_size, height, width), np.float32)
    labels = np.full((batch_size, height, width), ignore_index, np.uint8)
    for item in range(batch_size):
        # uniform draws keep the generator's sequence of every run trained before dataset weights existed
        index = int(rng.integers(len(data))) if probabilities is None else int(rng.choice(len(data), p=probabilities))
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
        if randomise is not None:
            images[item], labels[item] = randomised_crop(
                data.raw[index], label, top, left, crop, randomise, rng, ignore_index
            )
            continue
        patch = (slice(top, top + height), slice(left, left + width))
        h, w = image[patch].shape
        images[item, :h, :w] = image[patch]
        labels[item, :h, :w] = label[patch]
    return images, labels
