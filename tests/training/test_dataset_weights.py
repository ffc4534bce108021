"""A recipe's dataset weights: B-scans of a dataset drawn for crops that many times as often (issue 18: Duke's 44
training B-scans were 13 % of the crops against UMN's 300). Probabilities are hand-computed."""

from dataclasses import replace

import numpy as np
import pytest

from napari_octfluid.labels import IGNORE
from napari_octfluid.model import MODEL_CONFIGS, TransUNet
from napari_octfluid.subjects import Subject
from napari_octfluid.training.data import BscanSet, random_crops
from napari_octfluid.training.engine import TrainConfig, train


def four_bscans(datasets=("duke", "umn", "umn", "umn")) -> BscanSet:
    images = [np.zeros((8, 8), np.float32) for _ in datasets]
    labels = [np.zeros((8, 8), np.uint8) for _ in datasets]
    return BscanSet(images, labels, [f"{d}_0[{i}]" for i, d in enumerate(datasets)], datasets=list(datasets))


@pytest.mark.parametrize(
    "weights, expected",
    [
        ({"duke": 3.0}, [3 / 6, 1 / 6, 1 / 6, 1 / 6]),  # weights 3, 1, 1, 1 over a total of 6
        ({"umn": 0.5}, [1 / 2.5, 0.5 / 2.5, 0.5 / 2.5, 0.5 / 2.5]),
        ({"duke": 2.0, "umn": 2.0}, [0.25, 0.25, 0.25, 0.25]),  # the same weight everywhere is uniform
        ({"duke": 1.0}, [0.25, 0.25, 0.25, 0.25]),
    ],
)
def test_each_bscan_is_drawn_with_its_datasets_share(weights, expected):
    assert np.allclose(four_bscans().sampling_probabilities(weights), expected)


@pytest.mark.parametrize("weights", [None, {}])
def test_without_weights_bscans_are_drawn_uniformly(weights):
    assert four_bscans().sampling_probabilities(weights) is None


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"duk": 3.0}, "names 'duk', but the training B-scans come from duke, umn"),
        ({"duke": 0.0}, r"dataset_weights\['duke'\] is 0.0: give a positive number"),
        ({"duke": -1.0}, "give a positive number"),
        ({"duke": float("nan")}, "give a positive number"),
    ],
)
def test_a_weight_that_cannot_apply_is_a_clear_error(weights, message):
    with pytest.raises(ValueError, match=message):
        four_bscans().sampling_probabilities(weights)


def test_weights_need_to_know_each_bscans_dataset():
    data = four_bscans()
    data.datasets = None
    with pytest.raises(ValueError, match="need the dataset of each B-scan"):
        data.sampling_probabilities({"duke": 3.0})


def test_bscans_from_subjects_know_their_dataset():
    images, labels = np.zeros((2, 40, 40)), np.zeros((2, 40, 40), np.uint8)
    subjects = [Subject("duke_01", images, labels), Subject("scan", images, labels, dataset="clinic")]
    assert BscanSet.from_subjects(subjects).datasets == ["duke", "duke", "clinic", "clinic"]


def test_crops_are_drawn_from_the_weighted_datasets_as_often_as_the_weights_say():
    # two B-scans per dataset, Duke's all fluid and UMN's all background, so each crop's label tells where it came
    # from: uniformly half the crops are Duke's; weighted 3:1, three quarters (binomial sd 0.015 over 800 crops)
    data = four_bscans(("duke", "duke", "umn", "umn"))
    data.labels[0][:] = data.labels[1][:] = 1
    for weights, expected in [(None, 0.5), ({"duke": 3.0}, 0.75)]:
        probabilities = data.sampling_probabilities(weights)
        _, labels = random_crops(data, 800, (8, 8), 0.0, IGNORE, np.random.default_rng(0), None, probabilities)
        assert abs((labels[:, 0, 0] == 1).mean() - expected) < 0.05


def test_the_recipe_setting_travels_in_the_training_config_and_a_misspelt_dataset_stops_training():
    config = TrainConfig(dataset_weights={"duke": 3.0}, epochs=1, steps_per_epoch=1, crop=(8, 8), device="cpu")
    assert TrainConfig.from_dict(config.to_dict()) == config
    misspelt = replace(config, dataset_weights={"dukee": 3.0})
    data = four_bscans()
    data.labels[0][2:4, 2:4] = 1
    with pytest.raises(ValueError, match="names 'dukee'"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), data, config=misspelt))


def test_training_draws_its_crops_with_the_configs_dataset_weights(monkeypatch):
    from napari_octfluid.training import engine

    drawn_with = []

    def recording_random_crops(data, *args):
        drawn_with.append(args[-1] if len(args) == 7 else None)
        return random_crops(data, *args)

    monkeypatch.setattr(engine, "random_crops", recording_random_crops)
    data = four_bscans()
    data.labels[0][2:4, 2:4] = 1
    config = TrainConfig(
        dataset_weights={"duke": 3.0}, epochs=1, steps_per_epoch=2, batch_size=2, crop=(8, 8), device="cpu"
    )
    next(train(TransUNet(MODEL_CONFIGS["tiny"]), data, config=config))
    assert drawn_with and np.allclose(drawn_with[0], [0.5, 1 / 6, 1 / 6, 1 / 6])
