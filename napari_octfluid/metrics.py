"""Dice and Jaccard from confusion counts (numpy), per B-scan and pooled, with unlabelled pixels left out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Fluid-pixel counts: true positives, false positives, false negatives (per B-scan arrays or totals)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def pooled(self) -> "Confusion":
        return Confusion(*(np.asarray(a).sum() for a in (self.tp, self.fp, self.fn)))

    @property
    def dice(self) -> np.ndarray:
        """2TP / (2TP + FP + FN) (Darooei et al. 2023, Eq. 6); 1 where reference and prediction are both empty."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def jaccard(self) -> np.ndarray:
        """TP / (TP + FP + FN); 1 where both are empty."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)


def concatenated(parts: list[Confusion]) -> Confusion:
    """The per-B-scan counts of several volumes (or single B-scans) as one: what pooled figures are computed over."""
    return Confusion(*(np.concatenate([np.atleast_1d(getattr(c, name)) for c in parts]) for name in ("tp", "fp", "fn")))


def _ratio(numerator, denominator) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 1.0)


def confusion(prediction: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None) -> Confusion:
    """Per-B-scan counts for ``[Z, Y, X]`` (or one ``[Y, X]``) fluid masks (any class > 0 is fluid)."""
    prediction, reference = np.asarray(prediction) > 0, np.asarray(reference) > 0
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
    if prediction.ndim == 2:
        prediction, reference = prediction[None], reference[None]
        valid = None if valid is None else np.asarray(valid)[None]
    valid = np.ones_like(prediction) if valid is None else np.asarray(valid, bool)
    axes = (1, 2)
    return Confusion(
        tp=(prediction & reference & valid).sum(axes),
        fp=(prediction & ~reference & valid).sum(axes),
        fn=(~prediction & reference & valid).sum(axes),
    )


@dataclass(frozen=True)
class Agreement:
    """The figures reported everywhere: pooled Dice/Jaccard, mean per-B-scan Dice, and false alarms."""

    pooled_dice: float
    pooled_jaccard: float
    mean_bscan_dice: float  # over B-scans whose reference holds fluid
    false_positive_rate: float  # share of fluid-free B-scans where fluid is predicted
    n_bscans: int

    @classmethod
    def from_confusion(cls, counts: Confusion) -> "Agreement":
        has_fluid = (counts.tp + counts.fn) > 0
        pooled = counts.pooled()
        per_bscan = counts.dice
        no_fluid = ~has_fluid
        return cls(
            float(pooled.dice),
            float(pooled.jaccard),
            float(per_bscan[has_fluid].mean()) if has_fluid.any() else float("nan"),
            float((counts.fp[no_fluid] > 0).mean()) if no_fluid.any() else float("nan"),
            int(len(per_bscan)),
        )
