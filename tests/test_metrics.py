"""Dice, Jaccard and the reported agreement figures, on hand-made masks."""

import numpy as np
import pytest

from napari_octfluid.metrics import Agreement, concatenated, confusion


def masks():
    reference = np.zeros((3, 4, 4), np.uint8)
    prediction = np.zeros((3, 4, 4), np.uint8)
    reference[0, :2, :2] = 1  # 4 fluid pixels
    prediction[0, :2, :3] = 1  # 6 predicted: tp 4, fp 2
    reference[1, 0, 0] = 1  # missed: fn 1
    prediction[2, 3, 3] = 1  # a false alarm on a fluid-free B-scan
    return prediction, reference


def test_per_bscan_and_pooled_dice_and_jaccard():
    counts = confusion(*masks())
    assert counts.tp.tolist() == [4, 0, 0] and counts.fp.tolist() == [2, 0, 1] and counts.fn.tolist() == [0, 1, 0]
    np.testing.assert_allclose(counts.dice, [8 / 10, 0.0, 0.0])
    pooled = counts.pooled()
    assert float(pooled.dice) == pytest.approx(8 / (8 + 3 + 1))
    assert float(pooled.jaccard) == pytest.approx(4 / (4 + 3 + 1))


def test_empty_reference_and_prediction_agree_fully():
    empty = np.zeros((1, 5, 5))
    assert confusion(empty, empty).dice.tolist() == [1.0]


def test_agreement_figures():
    agreement = Agreement.from_confusion(confusion(*masks()))
    assert agreement.mean_bscan_dice == pytest.approx((0.8 + 0.0) / 2)  # B-scans whose reference has fluid
    assert agreement.false_positive_rate == 1.0  # the one fluid-free B-scan has a false alarm
    assert agreement.n_bscans == 3


def test_unlabelled_pixels_do_not_count():
    prediction, reference = masks()
    valid = np.ones_like(reference, bool)
    valid[0, :, 2:] = False  # hides the two false positives of B-scan 0
    assert confusion(prediction, reference, valid).dice[0] == 1.0


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros((2, 3)), np.zeros((3, 2)))


def test_concatenated_keeps_every_bscan_of_every_part_in_order():
    volume = confusion(np.array([[[1, 1]], [[0, 0]]]), np.array([[[1, 0]], [[0, 1]]]))  # 2 B-scans
    single = confusion(np.array([[1, 0]]), np.array([[1, 0]]))  # one B-scan, given as 2D
    joined = concatenated([volume, single])
    assert joined.tp.tolist() == [1, 0, 1] and joined.fp.tolist() == [1, 0, 0] and joined.fn.tolist() == [0, 1, 0]
    assert Agreement.from_confusion(joined).pooled_dice == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
