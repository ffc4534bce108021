"""The click tools on small hand-made volumes, each against a mask written out by hand."""

import numpy as np
import pytest

from napari_octfluid.correct import (
    Correction,
    add_lesion,
    copy_neighbour,
    fill_holes,
    remove_islands,
    remove_lesion,
)

I = 255  # noqa: E741  not annotated, short so that the hand-made masks stay readable


def vol(*bscans) -> np.ndarray:
    return np.array(bscans, dtype=np.uint8)


# Two B-scans: a lesion (with a diagonal step) and a lone pixel in B-scan 0; in B-scan 1 a lesion that overlaps
# the first one at (1, 1), and one that only touches it diagonally across B-scans (so it is another lesion).
TWO_BSCANS = vol(
    [
        [0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
        [1, 0, 0, I, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 1, 0, 0, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ],
)


def test_remove_lesion_in_the_bscan_follows_diagonals_and_leaves_the_rest():
    before = TWO_BSCANS.copy()
    result = remove_lesion(TWO_BSCANS, (0, 1, 2))
    assert result.bscans == (0,)
    expected = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [1, 0, 0, I, 0],
        ]
    )
    np.testing.assert_array_equal(result.labels[0], expected)
    np.testing.assert_array_equal(TWO_BSCANS, before)  # the input is never changed


def test_remove_lesion_through_the_volume_follows_overlap_not_diagonal_steps():
    result = remove_lesion(TWO_BSCANS, (0, 1, 1), through_volume=True)
    assert result.bscans == (0, 1)
    after = result.applied_to(TWO_BSCANS)
    np.testing.assert_array_equal(after[0], remove_lesion(TWO_BSCANS, (0, 1, 1)).labels[0])
    expected_1 = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    expected_1[2, 4] = expected_1[3, 4] = 1  # touches (0, 2, 3) only diagonally across B-scans: kept
    np.testing.assert_array_equal(after[1], expected_1)


@pytest.mark.parametrize("point", [(0, 0, 0), (0, 4, 3)], ids=["background", "not annotated"])
def test_remove_lesion_off_fluid_changes_nothing(point):
    result = remove_lesion(TWO_BSCANS, point)
    assert not result.changed and result.labels.shape == (0, 5, 5) and "nothing" in result.message


# Probability of one B-scan: a core of 0.9 inside a ring of 0.6 with a 0.7 touching it diagonally, the rest 0.1.
PROBABILITY = np.array(
    [
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
        [0.1, 0.6, 0.6, 0.6, 0.1, 0.1],
        [0.1, 0.6, 0.9, 0.6, 0.1, 0.1],
        [0.1, 0.6, 0.6, 0.6, 0.1, 0.1],
        [0.1, 0.1, 0.1, 0.1, 0.7, 0.1],
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    ]
)[None]
EMPTY = np.zeros((1, 6, 6), np.uint8)


@pytest.mark.parametrize(
    "threshold, expected_rows",
    [
        (0.8, ["000000", "000000", "001000", "000000", "000000", "000000"]),  # narrow: the core only
        (0.5, ["000000", "011100", "011100", "011100", "000010", "000000"]),  # widened: the ring and its diagonal
    ],
)
def test_add_lesion_threshold_narrows_and_widens_the_region(threshold, expected_rows):
    result = add_lesion(EMPTY, PROBABILITY, (0, 2, 2), threshold=threshold, max_share=0.5)
    expected = np.array([[int(c) for c in row] for row in expected_rows])
    assert result.bscans == (0,)
    np.testing.assert_array_equal(result.labels[0], expected)


def test_add_lesion_keeps_not_annotated_and_existing_labels():
    labels = EMPTY.copy()
    labels[0, 1, 1] = I
    labels[0, 3, 3] = 2  # another fluid label the user painted: kept
    result = add_lesion(labels, PROBABILITY, (0, 2, 2), threshold=0.5, max_share=0.5)
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, I, 1, 1, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 1, 1, 2, 0, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(result.labels[0], expected)
    assert labels[0, 1, 1] == I  # the input is unchanged


def test_add_lesion_refuses_a_flood_and_says_so():
    result = add_lesion(EMPTY, PROBABILITY, (0, 2, 2), threshold=0.05, max_share=0.25)
    assert not result.changed and result.flooded
    assert "100%" in result.message and "raise the threshold" in result.message


@pytest.mark.parametrize(
    "labels_at_click, threshold, says",
    [(0, 0.95, "below the threshold"), (I, 0.5, "not annotated"), (1, 0.8, "already fluid")],
)
def test_add_lesion_that_adds_nothing_says_why(labels_at_click, threshold, says):
    labels = EMPTY.copy()
    labels[0, 2, 2] = labels_at_click
    result = add_lesion(labels, PROBABILITY, (0, 2, 2), threshold=threshold)
    assert not result.changed and says in result.message


def test_add_lesion_needs_a_probability_of_the_labels_shape():
    with pytest.raises(ValueError, match="differ in shape"):
        add_lesion(EMPTY, PROBABILITY[:, :5], (0, 2, 2))


ISLANDS = vol(
    [
        [1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0],
        [I, I, 0, 0, 1],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
)


@pytest.mark.parametrize(
    "min_pixels, bscans, expected_bscans, expected_pixels_left",
    [
        (2, None, (0,), [4, 2]),  # single pixels go; the diagonal pair in B-scan 1 is one island of 2
        (3, None, (0, 1), [4, 0]),
        (3, [1], (1,), [6, 0]),  # only the B-scan on screen
        (5, [0], (0,), [0, 2]),
        (1, None, (), [6, 2]),
    ],
)
def test_remove_islands(min_pixels, bscans, expected_bscans, expected_pixels_left):
    result = remove_islands(ISLANDS, min_pixels, bscans)
    assert result.bscans == expected_bscans
    after = result.applied_to(ISLANDS)
    assert [int((b == 1).sum()) for b in after] == expected_pixels_left
    assert (after == I).sum() == 2  # not annotated stays


def test_fill_holes_fills_enclosed_background_but_not_not_annotated_nor_open_bays():
    labels = vol(
        [
            [1, 1, 1, 1, 0, 0],
            [1, 0, 0, 1, 0, 0],
            [1, 0, I, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [0, 0, 1, 0, 0, 1],
            [0, 0, 1, 0, 0, 0],
        ],
        np.zeros((6, 6), np.uint8),
    )
    result = fill_holes(labels)
    assert result.bscans == (0,)
    expected = np.array(
        [
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, I, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [0, 0, 1, 0, 0, 1],
            [0, 0, 1, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(result.labels[0], expected)
    assert not fill_holes(labels, bscans=[1]).changed


def test_copy_neighbour_keeps_not_annotated_on_either_side():
    labels = vol(
        [[1, 1, 0], [0, I, 1], [0, 0, 0]],
        [[0, 0, 0], [1, 0, I], [I, 0, 1]],
    )
    result = copy_neighbour(labels, bscan=1, source=0)
    assert result.bscans == (1,)
    np.testing.assert_array_equal(result.labels[0], [[1, 1, 0], [0, 0, I], [I, 0, 0]])
    assert not copy_neighbour(labels, bscan=0, source=-1).changed  # no B-scan before the first
    assert not copy_neighbour(result.applied_to(labels), bscan=1, source=0).changed


def test_applied_to_copies():
    labels = np.zeros((2, 2, 2), np.uint8)
    after = Correction((1,), np.ones((1, 2, 2), np.uint8), "").applied_to(labels)
    assert after[1].all() and not labels.any()


def test_a_refusal_never_reads_as_equal_numbers():
    """ "Fluid probability at the click is 0.98, below the threshold 0.98" (0.975 against 0.98, rounded)."""
    labels = np.zeros((1, 8, 8), np.uint8)
    probability = np.full(labels.shape, 0.975, np.float32)
    message = add_lesion(labels, probability, (0, 4, 4), threshold=0.98).message
    assert "is 0.975, below the threshold 0.980" in message
    message = add_lesion(labels, probability, (0, 4, 4), threshold=0.99).message
    assert "is 0.98, below the threshold 0.99" in message  # two digits where they differ
