"""Which B-scans a person has reviewed, and where the model is unsure (numpy only, no Qt).

A B-scan's status is derived from the data, not from a log of edits: it is *corrected* when its labels differ
from the baseline (the labels as predicted, or as loaded), *accepted* when the user accepted it unchanged, and
*unreviewed* otherwise. Deriving it means that painting, filling, undo, redo and replacing the data all update
the status the same way, whatever route the change took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Status(IntEnum):
    UNREVIEWED = 0
    CORRECTED = 1
    ACCEPTED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def changed_bscans(labels: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Boolean per B-scan: does ``labels[Z, Y, X]`` differ anywhere from ``baseline`` on that B-scan?"""
    if labels.shape != baseline.shape:
        raise ValueError(f"labels {labels.shape} and baseline {baseline.shape} differ in shape")
    return (labels != baseline).reshape(labels.shape[0], -1).any(axis=1)


def binary_entropy_bits(probability: np.ndarray) -> np.ndarray:
    """H(p) = -p log2 p - (1-p) log2 (1-p), 0 at p = 0 or 1."""
    p = np.clip(np.asarray(probability, np.float32), 1e-7, 1 - 1e-7)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def bscan_uncertainty(fluid_probability: np.ndarray) -> np.ndarray:
    """Mean entropy (bits per pixel) of the fluid probability in each B-scan of ``[Z, Y, X]``: high where the
    model hesitates between fluid and background, the B-scans most worth a person's look."""
    probability = np.asarray(fluid_probability)
    if probability.ndim == 2:
        probability = probability[None]
    return np.array([binary_entropy_bits(bscan).mean() for bscan in probability], dtype=np.float64)


@dataclass
class ReviewState:
    """Review of one labels volume ``[Z, Y, X]``.

    Attributes
    ----------
    baseline : labels as the model predicted them (or as they were loaded); edits are measured against it
    accepted : per B-scan, the user accepted the labels as they are
    model : which weights produced the baseline ("" when the labels did not come from a model)
    uncertainty : per B-scan mean entropy of the fluid probability, when a model gave one
    """

    baseline: np.ndarray
    accepted: np.ndarray
    model: str = ""
    uncertainty: np.ndarray | None = None
    edited: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.baseline = np.asarray(self.baseline)
        if self.baseline.ndim != 3:
            raise ValueError(f"review needs a labels volume [Z, Y, X], got shape {self.baseline.shape}")
        self.accepted = np.asarray(self.accepted, bool).copy()
        if self.accepted.shape != (self.n_bscans,):
            raise ValueError(f"{len(self.accepted)} accepted flags for {self.n_bscans} B-scans")
        if self.uncertainty is not None and len(self.uncertainty) != self.n_bscans:
            raise ValueError(f"{len(self.uncertainty)} uncertainty values for {self.n_bscans} B-scans")
        self.edited = np.zeros(self.n_bscans, bool)

    @classmethod
    def start(cls, labels: np.ndarray, model: str = "", uncertainty: np.ndarray | None = None) -> "ReviewState":
        """Nothing reviewed yet; ``labels`` (copied) become the baseline."""
        labels = np.asarray(labels)
        return cls(labels.copy(), np.zeros(labels.shape[0], bool), model, uncertainty)

    @property
    def n_bscans(self) -> int:
        return int(self.baseline.shape[0])

    def update(self, labels: np.ndarray, bscans: np.ndarray | list[int] | None = None) -> np.ndarray:
        """Re-derive which B-scans are edited, for ``bscans`` (default: all); returns those whose status changed."""
        before = self.statuses()
        if bscans is None:
            self.edited = changed_bscans(np.asarray(labels), self.baseline)
        else:
            for z in np.unique(np.asarray(bscans, int)):
                self.edited[z] = bool((np.asarray(labels[z]) != self.baseline[z]).any())
        return np.flatnonzero(self.statuses() != before)

    def statuses(self) -> np.ndarray:
        """Status per B-scan (an edit after accepting makes the B-scan corrected)."""
        out = np.full(self.n_bscans, Status.UNREVIEWED, dtype=np.int8)
        out[self.accepted] = Status.ACCEPTED
        out[self.edited] = Status.CORRECTED
        return out

    def status(self, z: int) -> Status:
        return Status(int(self.statuses()[z]))

    def accept(self, z: int, accepted: bool = True) -> None:
        self.accepted[z] = accepted

    @property
    def reviewed(self) -> np.ndarray:
        """Corrected or accepted: protected from new predictions and used for fine-tuning."""
        return self.statuses() != Status.UNREVIEWED

    def merge_prediction(self, current: np.ndarray, predicted: np.ndarray, model: str = "",
                         uncertainty: np.ndarray | None = None) -> np.ndarray:
        """Labels after a new prediction: reviewed B-scans keep the user's labels, the others take the
        prediction (which becomes their new baseline). Returns the merged labels."""
        current, predicted = np.asarray(current), np.asarray(predicted)
        if current.shape != predicted.shape:
            raise ValueError(f"the prediction {predicted.shape} does not match the labels {current.shape}")
        keep = self.reviewed
        merged = predicted.copy()
        merged[keep] = current[keep]
        baseline = self.baseline.copy()  # a new array: an autosave in flight may still read the old one
        baseline[~keep] = predicted[~keep]
        self.baseline = baseline
        self.model = model or self.model
        if uncertainty is not None:
            self.uncertainty = np.asarray(uncertainty, np.float64)
        self.update(merged)
        return merged

    def next_bscan(self, current: int, wanted: np.ndarray) -> int | None:
        """The first B-scan after ``current`` (wrapping round) where ``wanted`` is true."""
        order = np.roll(np.arange(self.n_bscans), -(current + 1))
        hits = [int(z) for z in order if wanted[z]]
        return hits[0] if hits else None

    def most_uncertain_unreviewed(self) -> int | None:
        if self.uncertainty is None:
            return None
        candidates = np.flatnonzero(~self.reviewed)
        return None if len(candidates) == 0 else int(candidates[np.argmax(self.uncertainty[candidates])])
