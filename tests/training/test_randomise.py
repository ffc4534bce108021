"""Domain randomisation of training crops (training/randomise.py): the draws, determinism, alignment of images and
labels under every shift, the recipes, and a tiny training run with it on."""

import math
from pathlib import Path

import numpy as np
import pytest
import tomllib
from scipy import ndimage

from napari_octfluid.events import run_to_end as drain
from napari_octfluid.labels import IGNORE
from napari_octfluid.model import MODEL_CONFIGS, TransUNet
from napari_octfluid.subjects import Subject
from napari_octfluid.training.config import TrainConfig
from napari_octfluid.training.data import BscanSet, random_crops
from napari_octfluid.training.engine import train
from napari_octfluid.training.randomise import LOG_UNIFORM, ORDER, RandomiseConfig, draw, randomised_crop

REPO = Path(__file__).resolve().parents[2]
GEOMETRIC = {"axial_factor", "lateral_factor"}


def only(names, probability=1.0) -> RandomiseConfig:
    """A config that draws only ``names`` (with their default ranges)."""
    return RandomiseConfig(probability=probability, **{name: None for name in ORDER if name not in names})


def cyst_scan(n=3, seed=0, rows=96, columns=160) -> BscanSet:
    """Raw uint8 B-scans of textured tissue (grey 170, sd 20) with a dark cyst (grey 20) labelled fluid."""
    rng = np.random.default_rng(seed)
    images = rng.normal(170, 20, (n, rows, columns)).clip(0, 255)
    labels = np.zeros((n, rows, columns), np.uint8)
    for z in range(n):
        top, left = rng.integers(20, rows - 40), rng.integers(20, columns - 50)
        labels[z, top : top + 16, left : left + 24] = 1
    images[labels == 1] = 20
    return BscanSet.from_subjects([Subject(f"cysts{seed}", images.astype(np.uint8), labels)])


def test_draws_respect_each_range_the_probability_and_the_order():
    config = RandomiseConfig(probability=0.5)
    rng = np.random.default_rng(0)
    draws = [draw(config, rng) for _ in range(2000)]
    for drawn in draws:
        names = [name for name, _ in drawn]
        assert names == [name for name in ORDER if name in names]  # in the order a scan meets them
        for name, strength in drawn:
            low, high = getattr(config, name)
            assert low <= strength <= high
    counts = {name: sum(name in dict(d) for d in draws) for name in ORDER}
    assert all(900 <= count <= 1100 for count in counts.values())  # 1000 expected of each
    # factors log-uniform: x0.5 as likely as x2, so the median factor is the geometric mean of the bounds (1.0)
    for name in LOG_UNIFORM:
        low, high = getattr(config, name)
        values = [d[name] for d in map(dict, draws) if name in d]
        assert np.median(values) == pytest.approx(math.sqrt(low * high), rel=0.1)


@pytest.mark.parametrize(
    ("config", "expected"), [(RandomiseConfig(probability=0.0), []), (only({"speckle"}), ["speckle"])]
)
def test_probability_zero_draws_nothing_and_a_shift_left_out_is_never_drawn(config, expected):
    rng = np.random.default_rng(1)
    assert all([name for name, _ in draw(config, rng)] == expected for _ in range(50))


def test_settings_are_checked_and_round_trip_through_the_train_config():
    with pytest.raises(ValueError, match="probability"):
        RandomiseConfig(probability=1.5)
    with pytest.raises(ValueError, match="speckle"):
        RandomiseConfig(speckle=(0.7, 0.1))
    with pytest.raises(ValueError, match="unknown setting"):
        RandomiseConfig.from_dict({"specle": [0.1, 0.2]})
    config = TrainConfig(randomise=RandomiseConfig(probability=0.4, jpeg=None, gamma=(0.7, 1.4)))
    assert TrainConfig.from_dict(config.to_dict()) == config
    # as a recipe's TOML gives it: lists, and false for a shift left out
    assert RandomiseConfig.from_dict({"jpeg": False, "gamma": [0.7, 1.4], "probability": 0.4}) == config.randomise


def test_the_default_recipe_is_unchanged_and_the_robust_recipe_turns_randomisation_on():
    def training(name):
        return TrainConfig.from_dict(tomllib.loads((REPO / "recipes" / name).read_text())["training"])

    default, robust = training("default_weights.toml"), training("robust_weights.toml")
    assert TrainConfig().randomise is None and default.randomise is None
    assert robust.randomise == RandomiseConfig(probability=0.3)
    data = [
        tomllib.loads((REPO / "recipes" / n).read_text())["data"]
        for n in ("default_weights.toml", "robust_weights.toml")
    ]
    assert data[0] == data[1]  # the same subjects: only the training differs


def test_randomised_crops_are_deterministic_for_a_seed_and_differ_between_seeds():
    data, config = cyst_scan(), RandomiseConfig(probability=0.5)

    def batch(seed):
        return random_crops(data, 6, (64, 64), 0.6, IGNORE, np.random.default_rng(seed), config)

    first, again, other = batch(3), batch(3), batch(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    images, labels = first
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert set(np.unique(labels)) <= {0, 1, IGNORE}


def test_without_shifts_the_crop_is_the_normalised_bscans_own():
    # the strip of full depth normalises as the whole B-scan does, to within a little; the labels exactly
    data = cyst_scan()
    for index in range(len(data)):
        image, labels = randomised_crop(
            data.raw[index],
            data.labels[index],
            10,
            40,
            (64, 64),
            RandomiseConfig(probability=0.0),
            np.random.default_rng(0),
        )
        np.testing.assert_array_equal(labels, data.labels[index][10:74, 40:104])
        assert np.abs(image - data.images[index][10:74, 40:104]).mean() < 0.02


@pytest.mark.parametrize("names", [GEOMETRIC, set(ORDER)])
def test_images_and_labels_stay_aligned_under_the_shifts(names):
    # the labelled cyst stays on the dark pixels, whatever resampling, borders and intensity changes were drawn
    data = cyst_scan(n=4, seed=2)
    config = only(names)
    rng = np.random.default_rng(5)
    with_cyst = 0
    for _ in range(12):
        images, labels = random_crops(data, 4, (64, 64), 1.0, IGNORE, rng, config)
        for image, label in zip(images, labels):
            cyst, tissue = label == 1, (label == 0) & (image > 0)  # padding reads 0 (preprocess.normalize_bscans)
            if not cyst.any():  # a registration border can move the cyst, labels and all, out of the crop
                continue
            with_cyst += 1
            if names == GEOMETRIC:
                # bilinear images against nearest labels differ only along the cyst's rim: the same centre
                dark = (image < 0.3) & (label != IGNORE)  # past a shrunk strip the crop is 0 and unknown
                assert (image[cyst] < 0.3).mean() > 0.75 and (image[tissue] > 0.3).mean() > 0.95
                regions, _ = ndimage.label(dark)
                largest = regions == np.bincount(regions[regions > 0]).argmax()
                box = [(a.min(), a.max()) for a in np.nonzero(largest)]
                assert np.abs(np.subtract(box, [(a.min(), a.max()) for a in np.nonzero(cyst)])).max() <= 2
            else:
                assert np.median(image[cyst]) < np.median(image[tissue])
    assert with_cyst >= 40  # of 48 crops centred on the cyst


def test_resampling_factors_keep_the_crop_on_the_same_tissue():
    # a factor of 2 on the rows doubles the cyst's height in the crop and keeps its centre on the crop's
    data = cyst_scan(n=1, seed=3)
    z_rows, z_columns = np.nonzero(data.labels[0] == 1)
    top, left = int(z_rows.mean()) - 32, int(z_columns.mean()) - 32
    config = RandomiseConfig(
        probability=1.0, **{n: None for n in ORDER if n != "axial_factor"}, axial_factor=(2.0, 2.0)
    )
    _, labels = randomised_crop(data.raw[0], data.labels[0], top, left, (64, 64), config, np.random.default_rng(0))
    rows = np.nonzero((labels == 1).any(1))[0]
    assert len(rows) == 32  # 16 rows of cyst, twice
    assert abs(rows.mean() - 31.5) <= 2


def test_subjects_of_another_axial_pixel_size_are_resampled_to_the_models():
    images = np.random.default_rng(0).integers(0, 255, (2, 64, 48), dtype=np.uint8)
    labels = np.zeros((2, 64, 48), np.uint8)
    labels[:, 20:30, 10:20] = 1
    finer = Subject("fine", images, labels, spacing_mm=(None, 0.00387 / 2, None))
    unknown = Subject("unknown", images, labels)
    resampled = BscanSet.from_subjects([finer, unknown], axial_spacing_mm=0.00387)
    assert [image.shape for image in resampled.images] == [(32, 48)] * 2 + [(64, 48)] * 2
    assert [label.shape for label in resampled.labels] == [(32, 48)] * 2 + [(64, 48)] * 2
    assert int((resampled.labels[0] == 1).sum()) == 5 * 10  # 10 rows of fluid are 5 at half the rows
    assert [image.shape for image in BscanSet.from_subjects([finer]).images] == [(64, 48)] * 2  # off by default


def test_a_tiny_training_run_with_randomisation_learns_alike_for_a_seed(tmp_path):
    import torch

    from napari_octfluid.model import load_model

    config = TrainConfig(
        epochs=1,
        steps_per_epoch=3,
        batch_size=4,
        crop=(64, 64),
        learning_rate=1e-2,
        device="cpu",
        randomise=RandomiseConfig(probability=0.5),
    )

    def run(out):
        torch.manual_seed(0)
        return drain(train(TransUNet(MODEL_CONFIGS["tiny"]), cyst_scan(), cyst_scan(seed=1), config, out))

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    losses = [[e.loss for e in events if type(e).__name__ == "StepEnd"] for events, _ in (first, second)]
    assert len(losses[0]) == 3 and all(np.isfinite(losses[0])) and losses[0] == losses[1]
    _, payload = load_model(tmp_path / "a" / "last.pt")
    assert TrainConfig.from_dict(payload["train_config"]).randomise == config.randomise
