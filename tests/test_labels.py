"""The label values, the conversion of a user's labels to training labels, and counting against a reference, each
checked on arrays small enough to count by hand."""

import numpy as np
import pytest

from napari_octfluid.labels import (
    BACKGROUND,
    FLUID,
    IGNORE,
    LabelsError,
    annotated_bscans,
    counts_against,
    pooled_counts,
    training_labels,
)


def test_the_values_are_those_of_the_files_and_the_losses():
    assert (BACKGROUND, FLUID, IGNORE) == (0, 1, 255)


# (user's labels, expected training labels, expected notice or None)
CONVERSIONS = [
    (
        "background, fluid and unknown are kept",
        np.array([[0, 1, 255]], np.uint8),
        np.array([[0, 1, 255]], np.uint8),
        None,
    ),
    (
        "fluid types become fluid; unknown stays unknown",
        np.array([[0, 2, 7, 255]], np.uint8),
        np.array([[0, 1, 1, 255]], np.uint8),
        "scan.tif holds label values [2, 7]: counted as fluid",
    ),
    (
        "whole-number floats are labels",
        np.array([[0.0, 1.0, 3.0]], np.float32),
        np.array([[0, 1, 1]], np.uint8),
        "scan.tif holds label values [3]: counted as fluid",
    ),
    (
        "wide integer types within 0..255 are labels",
        np.array([[0, 1, 255]], np.int64),
        np.array([[0, 1, 255]], np.uint8),
        None,
    ),
    ("a boolean mask is fluid where True", np.array([[False, True]]), np.array([[0, 1]], np.uint8), None),
]


@pytest.mark.parametrize("given, expected, notice", [c[1:] for c in CONVERSIONS], ids=[c[0] for c in CONVERSIONS])
def test_training_labels(given, expected, notice):
    told = []
    converted = training_labels(given, "scan.tif", notify=told.append)
    assert converted.dtype == np.uint8 and np.array_equal(converted, expected)
    assert told == [] if notice is None else (len(told) == 1 and told[0].startswith(notice))


# (user's labels, the words of the refusal)
REFUSALS = [
    ("NaN", np.array([[0.0, np.nan]]), "mask.tif holds values that are not whole numbers"),
    ("infinity", np.array([[0.0, np.inf]]), "not whole numbers"),
    ("a fraction", np.array([[0.0, 0.5]]), "not whole numbers"),
    ("a negative value", np.array([[0, -1]], np.int16), r"mask.tif holds values outside 0..255 \(-1..0\)"),
    ("a value above 255", np.array([[0, 256]], np.uint16), r"outside 0..255 \(0..256\)"),
]


@pytest.mark.parametrize("given, words", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_labels_that_are_not_labels_are_refused(given, words):
    with pytest.raises(LabelsError, match=words):
        training_labels(given, "mask.tif")
    assert issubclass(LabelsError, ValueError)  # callers that catch ValueError keep working


def test_one_argument_is_enough_and_the_input_is_not_changed():
    given = np.array([[0, 5, 255]], np.uint8)
    assert np.array_equal(training_labels(given), [[0, 1, 255]])
    assert np.array_equal(given, [[0, 5, 255]])


def test_annotated_bscans_are_those_with_any_pixel_not_unknown():
    labels = np.full((4, 2, 3), IGNORE, np.uint8)
    labels[1, 0, 0] = BACKGROUND  # one background pixel makes a B-scan annotated
    labels[3] = FLUID
    assert annotated_bscans(labels) == [1, 3]


def test_counts_leave_unknown_pixels_out():
    #           column: 0  1  2  3  4
    labels = np.array([[1, 1, 0, 0, 255]], np.uint8)
    prediction = np.array([[1, 0, 1, 0, 1]], np.uint8)  # the last one falls on an unknown pixel
    counts = counts_against(prediction, labels)
    assert (counts.tp.tolist(), counts.fp.tolist(), counts.fn.tolist()) == ([1], [1], [1])
    assert float(counts.dice[0]) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))


def test_counts_are_per_bscan_and_pool_over_pairs():
    labels = np.array([[[1, 1]], [[0, 0]]], np.uint8)  # B-scan 0 all fluid, B-scan 1 none
    prediction = np.array([[[1, 0]], [[1, 1]]], np.uint8)
    counts = counts_against(prediction, labels)
    assert (counts.tp.tolist(), counts.fp.tolist(), counts.fn.tolist()) == ([1, 0], [0, 2], [1, 0])
    pooled = pooled_counts([(prediction, labels), (prediction[:1], labels[:1])])
    assert (int(pooled.tp), int(pooled.fp), int(pooled.fn)) == (2, 2, 2)


def test_another_ignore_value_can_be_counted_with():
    labels = np.array([[1, 9]], np.uint8)
    counts = counts_against(np.array([[1, 1]]), labels, ignore=9)
    assert (int(counts.tp[0]), int(counts.fp[0])) == (1, 0)
