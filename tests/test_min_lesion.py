"""The minimum lesion size rule: regions under N pixels in a B-scan removed, others and unknown pixels kept."""

import numpy as np
import pytest

from napari_octfluid.labels import FLUID, IGNORE
from napari_octfluid.min_lesion import checked_min_lesion_pixels, remove_small_lesions


def volume() -> np.ndarray:
    """One B-scan with regions of 1, 4 (a diagonal chain: one region), 9 and 16 pixels, and an unknown band."""
    labels = np.zeros((1, 20, 30), np.uint8)
    labels[0, 1, 1] = FLUID  # 1 pixel
    for step in range(4):  # 4 pixels touching only at their corners
        labels[0, 5 + step, 5 + step] = FLUID
    labels[0, 12:15, 2:5] = FLUID  # 9
    labels[0, 12:16, 10:14] = FLUID  # 16
    labels[0, :, 25:] = IGNORE
    return labels


@pytest.mark.parametrize(
    ("min_pixels", "kept_sizes"),
    [(0, 1 + 4 + 9 + 16), (1, 1 + 4 + 9 + 16), (2, 4 + 9 + 16), (5, 9 + 16), (9, 9 + 16), (10, 16), (17, 0)],
)
def test_regions_under_the_size_go_and_the_rest_stay(min_pixels, kept_sizes):
    labels = volume()
    cleaned = remove_small_lesions(labels, min_pixels)
    assert int((cleaned == FLUID).sum()) == kept_sizes
    assert (cleaned[labels == IGNORE] == IGNORE).all()  # nobody said what these are: never touched
    assert ((cleaned == FLUID) <= (labels == FLUID)).all()  # only removes
    np.testing.assert_array_equal(labels, volume())  # the input is left as it was


def test_each_bscan_on_its_own_and_a_single_bscan():
    labels = np.zeros((2, 10, 10), np.uint8)
    labels[0, 2:4, 2:4] = FLUID  # 4 pixels in B-scan 0
    labels[1, 2:4, 2:4] = FLUID
    labels[1, 2:4, 4:6] = FLUID  # 8 pixels in B-scan 1
    cleaned = remove_small_lesions(labels, 5)
    assert not cleaned[0].any() and (cleaned[1] == labels[1]).all()
    assert not remove_small_lesions(labels[0], 5).any()


@pytest.mark.parametrize(("stored", "expected"), [(None, 0), (0, 0), (20, 20), (20.0, 20), (np.int64(7), 7)])
def test_stored_sizes_are_read_as_whole_pixels(stored, expected):
    assert checked_min_lesion_pixels(stored, "m.pt") == expected


@pytest.mark.parametrize("stored", [-1, 2.5, "20", True, float("nan"), [20]])
def test_damaged_stored_sizes_are_refused(stored):
    with pytest.raises(ValueError, match="m.pt: its min_lesion_pixels"):
        checked_min_lesion_pixels(stored, "m.pt")
