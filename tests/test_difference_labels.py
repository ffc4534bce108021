"""The difference overlay's values: where a mask and a reference disagree about fluid, counted by hand on one row
of pixels per case; the reference's unannotated pixels (255) never count."""

import numpy as np
import pytest

from napari_octfluid.colours import FALSE_NEGATIVE, FALSE_POSITIVE
from napari_octfluid.labels import difference_counts, difference_labels

FP, FN = FALSE_POSITIVE, FALSE_NEGATIVE

# (case, mask, reference, expected difference)
CASES = [
    ("agreement is 0, fluid or background", [0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]),
    ("fluid only in the mask is a false positive", [1, 1, 0], [0, 1, 0], [FP, 0, 0]),
    ("fluid only in the reference is a false negative", [0, 1, 0], [1, 1, 1], [FN, 0, FN]),
    ("any fluid class counts as fluid, in both", [2, 3, 0], [1, 0, 7], [0, FP, FN]),
    ("the reference's unannotated pixels never count", [1, 0, 255], [255, 255, 255], [0, 0, 0]),
    ("the mask's unannotated pixels are not fluid", [255, 255], [1, 0], [FN, 0]),
]


@pytest.mark.parametrize("mask, reference, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_difference_labels(mask, reference, expected):
    difference = difference_labels(np.array([mask], np.uint8), np.array([reference], np.uint8))
    assert difference.dtype == np.uint8 and difference.tolist() == [expected]


def test_the_values_are_distinct_from_agreement():
    assert len({0, FP, FN}) == 3


def test_counts_per_volume_and_per_bscan():
    mask = np.array([[[1, 1, 0]], [[0, 0, 1]]], np.uint8)  # B-scan 0: one FP, B-scan 1: two FN and one FP
    reference = np.array([[[1, 0, 255]], [[1, 1, 0]]], np.uint8)
    difference = difference_labels(mask, reference)
    assert difference.tolist() == [[[0, FP, 0]], [[FN, FN, FP]]]
    assert difference_counts(difference) == (2, 2)
    assert difference_counts(difference[0]) == (1, 0) and difference_counts(difference[1]) == (1, 2)


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=r"the mask \(1, 2\) and the reference \(1, 3\) differ in shape"):
        difference_labels(np.zeros((1, 2)), np.zeros((1, 3)))
