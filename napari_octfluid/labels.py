"""The label values octfluid trains and counts with, the conversion of a user's labels to them, and the counting of
a prediction against a reference that leaves unannotated pixels out, and where two masks disagree (the difference
overlay).

One value, ``IGNORE``, marks pixels nobody annotated: the losses skip them (``ignore_index``), the metrics do not
count them, training crops pad with them, and the Duke data marks the columns outside its graders' band with them.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .metrics import Confusion, confusion

BACKGROUND = 0
FLUID = 1
IGNORE = 255  # not annotated: neither rewarded nor punished (the losses' and metrics' ignore_index)


class LabelsError(ValueError):
    """Labels that cannot be read as background, fluid and unknown; the message says what the values must be."""


def training_labels(
    data: np.ndarray, name: str = "the labels", notify: Callable[[str], None] | None = None
) -> np.ndarray:
    """``data`` as the two-class model learns it (uint8): ``BACKGROUND``, ``FLUID`` and ``IGNORE`` are kept, any other
    positive value becomes ``FLUID`` (the model does not separate fluid types), and ``notify`` (if given) is told so in
    one sentence that names ``name``. Values that are not whole numbers from 0 to 255 raise :class:`LabelsError`."""
    data = np.asarray(data)
    if data.dtype == bool:  # a mask: True is fluid
        return data.astype(np.uint8)
    if not np.issubdtype(data.dtype, np.integer):
        # NaN compares false to everything, so it is caught here and never reaches the range check below
        if not np.isfinite(data).all() or not (data == np.round(data)).all():
            raise LabelsError(
                f"{name} holds values that are not whole numbers (NaN, Inf or fractions): labels "
                f"must be 0 for background and 1 for fluid."
            )
    if data.size and (data.min() < 0 or data.max() > IGNORE):
        raise LabelsError(
            f"{name} holds values outside 0..255 ({data.min()}..{data.max()}): labels must be 0 "
            f"for background, 1 for fluid, 255 for unknown."
        )
    data = data.astype(np.uint8)
    others = sorted(set(np.unique(data).tolist()) - {BACKGROUND, FLUID, IGNORE})
    if not others:
        return data
    if notify is not None:
        notify(f"{name} holds label values {others}: counted as fluid (the model has one fluid class).")
    return np.where(fluid_mask(data), FLUID, data).astype(np.uint8)


def fluid_mask(labels: np.ndarray) -> np.ndarray:
    """Fluid as true/false: every label but background and "not annotated" (the model has one fluid class)."""
    labels = np.asarray(labels)
    return (labels != BACKGROUND) & (labels != IGNORE)


def annotated_bscans(labels: np.ndarray) -> list[int]:
    """Indices of the B-scans of ``labels[Z, Y, X]`` with at least one annotated pixel (any value but ``IGNORE``)."""
    labels = np.asarray(labels)
    return np.flatnonzero((labels != IGNORE).reshape(len(labels), -1).any(axis=1)).tolist()


def counts_against(prediction: np.ndarray, labels: np.ndarray, ignore: int = IGNORE) -> Confusion:
    """Per-B-scan fluid counts of ``prediction`` (any value > 0 is fluid) against reference ``labels`` (``FLUID`` is
    fluid); pixels labelled ``ignore`` do not count."""
    labels = np.asarray(labels)
    return confusion(prediction, labels == FLUID, valid=labels != ignore)


def pooled_counts(pairs: Iterable[tuple[np.ndarray, np.ndarray]], ignore: int = IGNORE) -> Confusion:
    """The counts of every (prediction, labels) pair summed into one: what pooled Dice and Jaccard are made of."""
    tp = fp = fn = 0
    for prediction, labels in pairs:
        counts = counts_against(prediction, labels, ignore).pooled()
        tp, fp, fn = tp + int(counts.tp), fp + int(counts.fp), fn + int(counts.fn)
    return Confusion(np.array(tp), np.array(fp), np.array(fn))


def difference_labels(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where ``mask`` and ``reference`` disagree about fluid (uint8, same shape): 0 where they agree,
    ``colours.FALSE_POSITIVE`` where the mask has fluid the reference has not, ``colours.FALSE_NEGATIVE`` where the
    reference has fluid the mask missed. Pixels the reference left unannotated (``IGNORE``) are never counted, and an
    ``IGNORE`` pixel of the mask is not fluid (:func:`fluid_mask`)."""
    # colours imports this module's label values, so its difference values are imported when first needed
    from .colours import FALSE_NEGATIVE, FALSE_POSITIVE

    mask, reference = np.asarray(mask), np.asarray(reference)
    if mask.shape != reference.shape:
        raise ValueError(f"the mask {mask.shape} and the reference {reference.shape} differ in shape")
    in_mask, in_reference = fluid_mask(mask), fluid_mask(reference)
    annotated = reference != IGNORE
    difference = np.zeros(mask.shape, np.uint8)
    difference[in_mask & ~in_reference & annotated] = FALSE_POSITIVE
    difference[in_reference & ~in_mask] = FALSE_NEGATIVE  # fluid in the reference is annotated
    return difference


def difference_counts(difference: np.ndarray) -> tuple[int, int]:
    """(false positive, false negative) pixels of a :func:`difference_labels` array (one B-scan or more)."""
    from .colours import FALSE_NEGATIVE, FALSE_POSITIVE

    difference = np.asarray(difference)
    return int(np.count_nonzero(difference == FALSE_POSITIVE)), int(np.count_nonzero(difference == FALSE_NEGATIVE))
