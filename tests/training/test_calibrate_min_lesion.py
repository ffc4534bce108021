"""The minimum lesion size chosen on training B-scans next to the decision threshold, and stored in the checkpoint."""

import shutil

import numpy as np
import pytest

from napari_octfluid.labels import FLUID, IGNORE
from napari_octfluid.min_lesion import SIZES
from napari_octfluid.subjects import Subject
from napari_octfluid.training.calibrate import MAX_POOLED_DICE_COST, calibrate_checkpoint, calibrate_min_lesion
from napari_octfluid.training.data import BscanSet


def square(side: int, at=(5, 5), shape=(40, 40)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[at[0] : at[0] + side, at[1] : at[1] + side] = FLUID
    return mask


def test_the_size_that_removes_specks_without_costing_the_lesions_the_model_finds():
    # B-scans: a 6 x 6 lesion found exactly; a 12 x 12 lesion found with a 4 x 4 speck beside it; a healthy B-scan
    # with a 3 x 3 speck. 20 pixels remove both specks and keep both lesions: pooled Dice 1, no false alarm. 40 or
    # more would also remove the 36-pixel lesion, far more than the pooled Dice may lose.
    labels = [square(6), square(12), np.zeros((40, 40), np.uint8)]
    predictions = [square(6), square(12) | square(4, at=(30, 30)), square(3)]
    size, scores = calibrate_min_lesion(predictions, labels)
    assert size == 20 and scores[20] == {"pooled_dice": 1.0, "false_alarm_rate": 0.0}
    assert scores[0] == {"pooled_dice": pytest.approx(2 * 180 / (2 * 180 + 25)), "false_alarm_rate": 1.0}
    assert scores[10]["pooled_dice"] == pytest.approx(2 * 180 / (2 * 180 + 16))  # the 9-pixel speck gone
    assert scores[40] == {"pooled_dice": pytest.approx(2 * 144 / (2 * 144 + 36)), "false_alarm_rate": 0.0}
    assert set(scores) == set(SIZES)


def test_a_healthy_bscan_cleared_is_worth_a_small_lesion_within_the_pooled_dice_bound():
    # a 200 x 200 lesion and a 7 x 10 one, both found; a healthy B-scan with an 8 x 8 speck. Removing the speck
    # (80 pixels) also removes the 70-pixel lesion: pooled Dice 80140/80204 -> 80000/80070, a loss of 8e-5, within
    # MAX_POOLED_DICE_COST, for no false alarm left. With the small lesion 30 x 30 instead, 80 pixels would keep it
    # and 150 would cost 0.011: the rule takes 80.
    shape = (256, 256)
    labels = [square(200, shape=shape), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)]
    labels[1][5:12, 5:15] = FLUID
    predictions = [labels[0].copy(), labels[1].copy(), square(8, at=(100, 100), shape=shape)]
    size, scores = calibrate_min_lesion(predictions, labels)
    assert size == 80 and scores[80] == {"pooled_dice": pytest.approx(80000 / 80070), "false_alarm_rate": 0.0}
    assert scores[60] == {"pooled_dice": pytest.approx(80140 / 80204), "false_alarm_rate": 1.0}
    assert MAX_POOLED_DICE_COST >= scores[60]["pooled_dice"] - scores[80]["pooled_dice"] > 0


def test_a_lesion_costing_more_than_the_bound_is_kept_though_a_speck_stays():
    # a 40 x 40 lesion and a 9 x 10 one, both found; a healthy B-scan with a 9 x 9 speck. Only 100 pixels and more
    # remove the speck, and they take the 90-pixel lesion with it: pooled Dice 3380/3461 -> 3200/3290, a loss of
    # 0.004, above the bound, so the speck stays and the smallest size is kept.
    shape = (128, 128)
    labels = [square(40, shape=shape), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)]
    labels[1][5:14, 5:15] = FLUID
    predictions = [labels[0].copy(), labels[1].copy(), square(9, at=(60, 60), shape=shape)]
    size, scores = calibrate_min_lesion(predictions, labels)
    assert scores[100] == {"pooled_dice": pytest.approx(3200 / 3290), "false_alarm_rate": 0.0}
    assert scores[80] == {"pooled_dice": pytest.approx(3380 / 3461), "false_alarm_rate": 1.0}
    assert size == 0 and scores[0] == scores[80]


def test_ties_take_the_smallest_size_and_unknown_only_bscans_do_not_count():
    labels = [square(10), np.full((40, 40), IGNORE, np.uint8)]
    predictions = [square(10), square(3)]  # a speck where nobody annotated anything
    size, scores = calibrate_min_lesion(predictions, labels)
    assert size == 0 and scores[0]["pooled_dice"] == 1.0
    assert np.isnan(scores[0]["false_alarm_rate"])  # no annotated fluid-free B-scan
    assert calibrate_min_lesion([square(3)], [np.full((40, 40), IGNORE, np.uint8)]) == (0, {})


def test_calibrate_checkpoint_stores_the_size_beside_the_threshold(tiny_checkpoint, tmp_path):
    from napari_octfluid.model import read_checkpoint

    path = shutil.copy(tiny_checkpoint, tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (3, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[:, 20:36, 24:44] = FLUID
    images[labels == FLUID] = 40
    threshold, _ = calibrate_checkpoint(path, BscanSet.from_subjects([Subject("s", images, labels)]))
    payload = read_checkpoint(path)
    assert payload["decision_threshold"] == threshold
    assert payload["min_lesion_pixels"] in SIZES
    assert set(payload["min_lesion_scores_on_training"]) == set(SIZES)
    assert payload["loss_spec"] == read_checkpoint(tiny_checkpoint)["loss_spec"]  # everything else kept
