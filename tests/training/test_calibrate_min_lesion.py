"""The minimum lesion size chosen on training B-scans next to the decision threshold, and stored in the checkpoint."""

import shutil

import numpy as np
import pytest

from napari_octfluid.labels import FLUID, IGNORE
from napari_octfluid.min_lesion import SIZES
from napari_octfluid.subjects import Subject
from napari_octfluid.training.calibrate import calibrate_checkpoint, calibrate_min_lesion
from napari_octfluid.training.data import BscanSet


def square(side: int, at=(5, 5), shape=(40, 40)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[at[0] : at[0] + side, at[1] : at[1] + side] = FLUID
    return mask


def test_the_size_that_removes_specks_without_costing_the_lesions_the_model_finds():
    # B-scans: a 6 x 6 lesion found exactly; a 12 x 12 lesion found with a 4 x 4 speck beside it; a healthy B-scan
    # with a 3 x 3 speck. 20 pixels remove both specks and keep both lesions: every B-scan scores 1. 40 or more
    # would also remove the 36-pixel lesion, which costs the fluid B-scans half their mean Dice.
    labels = [square(6), square(12), np.zeros((40, 40), np.uint8)]
    predictions = [square(6), square(12) | square(4, at=(30, 30)), square(3)]
    size, scores = calibrate_min_lesion(predictions, labels)
    assert size == 20 and scores[20] == {"mean_bscan_dice": 1.0, "fluid_bscan_dice": 1.0}
    assert scores[0]["mean_bscan_dice"] == pytest.approx((1 + 2 * 144 / (2 * 144 + 16) + 0) / 3)
    assert scores[40]["fluid_bscan_dice"] == pytest.approx(0.5)  # not allowed, though it clears the healthy B-scan
    assert set(scores) == set(SIZES)


def test_ties_take_the_smallest_size_and_unknown_only_bscans_do_not_count():
    labels = [square(10), np.full((40, 40), IGNORE, np.uint8)]
    predictions = [square(10), square(3)]  # a speck where nobody annotated anything
    size, scores = calibrate_min_lesion(predictions, labels)
    assert size == 0 and scores[0]["mean_bscan_dice"] == 1.0
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
