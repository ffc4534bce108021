"""Training B-scans come from subjects (only annotated ones unless chosen); crops favour fluid and pad small B-scans
as unknown; augmentation keeps labels consistent."""

import numpy as np
import pytest
import torch

from napari_octfluid.labels import IGNORE
from napari_octfluid.preprocess import BscanError, normalize_bscans
from napari_octfluid.subjects import Subject
from napari_octfluid.training.augment import AugmentConfig, augment
from napari_octfluid.training.data import BscanSet, random_crops


def one_blob_set():
    images = np.random.default_rng(0).integers(0, 255, (3, 100, 120)).astype(np.uint8)
    labels = np.zeros((3, 100, 120), np.uint8)
    labels[:, 70:75, 100:110] = 1
    return BscanSet.from_subjects([Subject("vol", images, labels)])


def without_random_changes(**changes) -> AugmentConfig:
    """An augmentation that changes nothing, but for ``changes``."""
    values = dict(
        flip=False,
        max_rotation_deg=0,
        max_shift=0.0,
        contrast=(1, 1),
        brightness=0.0,
        gamma=(1, 1),
        noise_probability=0.0,
    )
    values.update(changes)
    return AugmentConfig(**values)


def test_from_subjects_chooses_bscans_and_checks_them():
    images, labels = np.zeros((4, 40, 40)), np.zeros((4, 40, 40), np.uint8)
    data = BscanSet.from_subjects([Subject("v", images, labels), Subject("w", images, labels)], [[1, 3], None])
    assert data.sources == ["v[1]", "v[3]", "w[0]", "w[1]", "w[2]", "w[3]"]
    with pytest.raises(BscanError, match="v: the B-scans are 10 x 10 pixels"):
        BscanSet.from_subjects([Subject("v", images[:, :10, :10], labels[:, :10, :10])])


def test_without_a_choice_only_bscans_with_an_annotated_pixel_are_used():
    # a volume where the user corrected B-scans 1 and 3 and left the others unknown: training must not learn
    # "no fluid" from B-scans nobody looked at (issue 19)
    images = np.random.default_rng(0).integers(1, 250, (5, 40, 50)).astype(np.uint8)
    labels = np.full((5, 40, 50), IGNORE, np.uint8)
    labels[1] = 0
    labels[3, 10:20, 10:20] = 1  # only fluid marked, the rest of the B-scan unknown
    data = BscanSet.from_subjects([Subject("v", images, labels)])
    assert data.sources == ["v[1]", "v[3]"]
    assert np.array_equal(data.labels[1], labels[3]) and data.labels[1].dtype == np.uint8
    assert BscanSet.from_subjects([Subject("v", images, np.full_like(labels, IGNORE))]).sources == []


def test_chosen_bscans_are_normalised_as_in_the_whole_volume_and_know_their_padding():
    rng = np.random.default_rng(1)
    images = rng.integers(1, 250, (3, 40, 50)).astype(np.uint8)
    images[2, :, :5] = 0  # export padding along the left edge of B-scan 2
    data = BscanSet.from_subjects([Subject("v", images, np.zeros((3, 40, 50), np.uint8))], [[2, 0]])
    whole = normalize_bscans(images)
    assert np.array_equal(data.images[0], whole[2]) and np.array_equal(data.images[1], whole[0])
    assert data.outside[0][:, :5].all() and not data.outside[0][:, 5:].any() and not data.outside[1].any()


def test_from_subjects_chooses_bscans_and_checks_shapes():
    images, labels = np.zeros((4, 40, 40)), np.zeros((4, 40, 40), np.uint8)
    assert BscanSet.from_subjects([Subject("v", images, labels)], [[1, 3]]).sources == ["v[1]", "v[3]"]
    assert BscanSet.from_subjects([Subject("one", images[0], labels[0])]).sources == ["one[0]"]  # a 2D B-scan
    with pytest.raises(ValueError, match="differ in shape"):
        BscanSet.from_subjects([Subject("v", images, labels[:2])])


def test_fluid_crops_contain_fluid():
    images, labels = random_crops(one_blob_set(), 16, (32, 32), 1.0, IGNORE, np.random.default_rng(1))
    assert images.shape == (16, 32, 32) and all((label == 1).any() for label in labels)


def test_small_bscans_are_padded_with_unknown_labels():
    data = BscanSet.from_subjects([Subject("small", np.ones((1, 40, 50)), np.zeros((1, 40, 50), np.uint8))])
    _, labels = random_crops(data, 2, (48, 64), 0.0, IGNORE, np.random.default_rng(0))
    assert (labels[:, 40:, :] == IGNORE).all() and (labels[:, :, 50:] == IGNORE).all()
    assert (labels[:, :40, :50] == 0).all()


def test_augmentation_keeps_shapes_ranges_and_label_values():
    images, labels = random_crops(one_blob_set(), 8, (64, 64), 1.0, IGNORE, np.random.default_rng(2))
    x, y = augment(
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(labels).long(),
        AugmentConfig(),
        IGNORE,
        torch.Generator().manual_seed(0),
    )
    assert x.shape == (8, 1, 64, 64) and y.shape == (8, 64, 64)
    assert set(torch.unique(y).tolist()) <= {0, 1, IGNORE}
    assert (y == 1).any()


def test_rotation_marks_pixels_from_outside_as_unknown():
    config = without_random_changes(max_rotation_deg=30)
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    _, y = augment(torch.rand(4, 1, 64, 64), labels, config, IGNORE, torch.Generator().manual_seed(3))
    assert (y[:, 0, 0] == IGNORE).any()  # a corner rotated in from outside
    assert (y[:, 32, 32] == 0).all()  # the centre stays labelled


def test_without_random_changes_augmentation_is_the_identity():
    config = without_random_changes()
    x, y = torch.rand(2, 1, 16, 16), torch.randint(0, 2, (2, 16, 16))
    x2, y2 = augment(x, y, config, IGNORE)
    assert torch.allclose(x2, x) and torch.equal(y2, y)
