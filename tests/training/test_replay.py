"""The replay crops shipped beside the weights: built from subjects, stored as plain arrays, loaded safely."""

import numpy as np
import pytest

from napari_octfluid.labels import IGNORE
from napari_octfluid.subjects import Subject
from napari_octfluid.training.replay import REPLAY_CROPS, build_replay_crops, load_replay_crops, save_replay_crops


def subject(name, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (3, 300, 320)).astype(np.uint8)
    labels = np.zeros((3, 300, 320), np.uint8)
    labels[:, 100:140, 150:200] = 1
    labels[:, :, :10] = IGNORE  # unknown columns stay unknown
    return Subject(name, images, labels)


def test_crops_round_trip_through_the_file_within_a_grey_level(tmp_path):
    crops = build_replay_crops([subject("duke_01", 0), subject("umn_00", 1)], crops_per_subject=3, crop=(128, 128))
    assert len(crops) == 6 and crops.sources == ["duke_01"] * 3 + ["umn_00"] * 3
    assert all(image.shape == (128, 128) for image in crops.images)
    path = save_replay_crops(crops, tmp_path / "replay.npz")
    loaded = load_replay_crops(path)
    assert loaded.sources == crops.sources
    assert max(np.abs(a - b).max() for a, b in zip(loaded.images, crops.images)) <= 0.5 / 255 + 1e-6
    assert all(np.array_equal(a, b) for a, b in zip(loaded.labels, crops.labels))
    assert {int(v) for label in loaded.labels for v in np.unique(label)} <= {0, 1, IGNORE}


def test_held_out_subjects_are_left_out_and_a_missing_file_gives_none(tmp_path):
    crops = build_replay_crops([subject("duke_01", 0), subject("umn_00", 1)], crops_per_subject=2, crop=(128, 128))
    path = save_replay_crops(crops, tmp_path / "replay.npz")
    assert load_replay_crops(path, exclude=("duke_01",)).sources == ["umn_00", "umn_00"]
    assert load_replay_crops(tmp_path / "absent.npz") is None


def test_a_file_that_needs_pickle_is_refused(tmp_path):
    path = tmp_path / "hostile.npz"
    np.savez(path, images=np.array([object()], dtype=object), labels=np.zeros(1), sources=np.array(["x"]))
    with pytest.raises(ValueError, match="pickle"):
        load_replay_crops(path)


@pytest.mark.skipif(not REPLAY_CROPS.is_file(), reason="no replay crops shipped in this checkout")
def test_the_shipped_crops_cover_every_training_subject_of_the_recipe():
    crops = load_replay_crops()
    assert len(crops) == 64 and len(set(crops.sources)) == 16
    assert not {"duke_05", "umn_12", "umn_13", "umn_14"} & set(crops.sources)  # the recipe's held-out subjects
    assert sum((label == 1).any() for label in crops.labels) >= 16
