"""Fine-tuning's core: the preset, which B-scans train and validate, the run's labels, and the before/after
comparison that scores only B-scans someone looked at."""

import dataclasses

import numpy as np
import pytest

from napari_octfluid.events import Notice, run_to_end
from napari_octfluid.labels import IGNORE
from napari_octfluid.model import load_model
from napari_octfluid.training import finetune
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.finetune import (
    NOT_USED,
    TRAINED,
    VALIDATION,
    ComparisonProgress,
    bscan_roles,
    choose_bscans,
    compare_models,
    comparison_summary,
    finetune_config,
    parse_bscan_list,
    prepare_and_train,
)


def test_the_preset_is_what_the_widget_trains_with():
    config = finetune_config((49, 496, 512))
    assert (config.trainable, config.change_kept, config.learning_rate, config.freeze_batchnorm) == (
        "decoder",
        0.5,
        1e-4,
        True,
    )
    assert (config.epochs, config.steps_per_epoch, config.batch_size, config.crop, config.loss) == (
        5,
        20,
        4,
        (256, 256),
        "composite",
    )
    assert finetune_config((100, 300)).crop == (100, 256)  # a B-scan smaller than the crop is taken whole


def test_overrides_replace_only_what_they_name():
    config = finetune_config((496, 512), epochs=2, learning_rate=1e-3, device="cpu")
    expected = dataclasses.replace(finetune_config((496, 512)), epochs=2, learning_rate=1e-3, device="cpu")
    assert config == expected and config.trainable == "decoder"
    with pytest.raises(TypeError):
        finetune_config((496, 512), epoch=2)  # a misspelt setting is refused, not ignored
    with pytest.raises(ValueError, match="height and width"):
        finetune_config((512,))


def test_replay_is_on_where_the_shipped_crops_exist(monkeypatch, tmp_path):
    monkeypatch.setattr(finetune, "REPLAY_CROPS", tmp_path / "replay_crops.npz")
    assert not finetune.replay_by_default()
    (tmp_path / "replay_crops.npz").write_bytes(b"")
    assert finetune.replay_by_default()


def test_bscan_lists():
    assert parse_bscan_list("0, 3, 5-7", 10) == [0, 3, 5, 6, 7]
    assert parse_bscan_list(" ", 10) == []
    with pytest.raises(ValueError, match="outside"):
        parse_bscan_list("9-12", 10)
    with pytest.raises(ValueError, match="cannot read"):
        parse_bscan_list("three", 10)


def labels_with_fluid_on(bscans, n=6, value=1):
    labels = np.zeros((n, 8, 8), np.uint8)
    for z in bscans:
        labels[z, 2:4, 2:4] = value
    return labels


def test_an_explicit_list_wins():
    reviewed = np.array([True, False, False, False, False, False])
    assert choose_bscans(labels_with_fluid_on([1]), [4, 2], [], reviewed, "model.pt") == ([2, 4], [])


def test_with_a_review_state_the_reviewed_bscans_train():
    reviewed = np.array([False, True, False, True, True, False])
    assert choose_bscans(labels_with_fluid_on([0, 1, 2]), (), (), reviewed, "model.pt") == ([1, 3, 4], [])
    assert choose_bscans(labels_with_fluid_on([0, 1, 2]), (), [3], reviewed, "model.pt") == ([1, 4], [3])
    # predicted by octfluid and nothing reviewed yet: the labels are the model's own, nothing to learn
    assert choose_bscans(labels_with_fluid_on([0, 1, 2]), (), (), np.zeros(6, bool), "model.pt") == ([], [])


def test_an_unreviewed_bscan_of_a_prediction_is_refused_for_validation():
    """Its labels are the model's own prediction: the starting model scored Dice 1.000 against itself there."""
    reviewed = np.array([False, True, False, True, True, False])
    with pytest.raises(ValueError, match="B-scan 2 is not reviewed: .* Validate on B-scans you corrected or accepted"):
        choose_bscans(labels_with_fluid_on([0, 1, 2]), (), [3, 2], reviewed, "model.pt")
    with pytest.raises(ValueError, match="B-scan 5 is not reviewed"):
        choose_bscans(labels_with_fluid_on([0, 1, 2]), [1], [5], reviewed, "model.pt")  # with an explicit list too
    # an expert's mask (no prediction behind it) validates anywhere
    assert choose_bscans(labels_with_fluid_on([0, 1, 2]), (), [2], np.zeros(6, bool), "") == ([0, 1], [2])


def test_a_mask_octfluid_did_not_predict_trains_on_every_bscan_with_fluid():
    labels = labels_with_fluid_on([0, 3])
    labels[4] = IGNORE  # not annotated: no fluid there
    labels[5, 0, 0] = 2  # a second fluid type is fluid
    assert choose_bscans(labels) == ([0, 3, 5], [])
    assert choose_bscans(labels, validation=[3]) == ([0, 5], [3])  # validation is never trained on
    # a review state that started from loaded labels (no model) and has nothing reviewed: the same
    assert choose_bscans(labels, reviewed=np.zeros(6, bool), model="") == ([0, 3, 5], [])
    single = labels[0]
    assert choose_bscans(single) == ([0], [])


def test_bscans_outside_the_volume_are_refused():
    with pytest.raises(ValueError, match="outside"):
        choose_bscans(labels_with_fluid_on([0]), [6])
    with pytest.raises(ValueError, match="outside"):
        choose_bscans(labels_with_fluid_on([0]), (), [7])
    with pytest.raises(ValueError, match="outside"):
        bscan_roles(3, [0], [3])


def test_not_annotated_pixels_are_never_trained_as_fluid(recorded_data):
    images = np.full((3, 32, 32), 100, np.uint8)
    labels = np.full((3, 32, 32), IGNORE, np.uint8)
    labels[:, 4:8, 4:8] = 1
    labels[:, 8:10, 8:10] = 3  # another fluid type
    labels[:, 0:2] = 0
    events, result = run_to_end(prepare_and_train(None, (images, labels, "scan"), [0, 1], [2], None))
    assert result == "trained"
    train_data, val_data = recorded_data[0]
    for label in [*train_data.labels, *val_data.labels]:
        assert set(np.unique(label).tolist()) == {0, 1, IGNORE}
        assert (label[labels[0] == IGNORE] == IGNORE).all()
    assert [type(e) for e in events] == [Notice] and "[3]" in events[0].message


def test_replay_feeds_the_shipped_crops_to_the_engine(monkeypatch):
    crops = BscanSet([np.zeros((8, 8), np.float32)], [np.ones((8, 8), np.uint8)], ["umn_00"])
    seen = []

    def fake_train(model, train_data, val_data, config, out_dir, loss, replay_data):
        seen.append(replay_data)
        return "trained"
        yield

    monkeypatch.setattr(finetune, "load_replay_crops", lambda: crops)
    monkeypatch.setattr(finetune, "train", fake_train)
    volume = (np.full((2, 40, 40), 100, np.uint8), np.ones((2, 40, 40), np.uint8), "scan")
    for replay in (True, False):
        run_to_end(prepare_and_train(None, volume, [0], [1], None, None, replay))
    assert seen == [crops, None]


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (4, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((4, 64, 64), np.uint8)
    labels[:3, 20:36, 24:44] = 1
    images[labels == 1] = 40
    return images, labels


def test_the_comparison_scores_only_bscans_used_in_fine_tuning(blobs, tiny_checkpoint):
    images, labels = blobs
    labels[1] = IGNORE  # a trained B-scan with nothing annotated: nothing to score
    model = load_model(tiny_checkpoint)[0]
    roles = bscan_roles(4, [0, 1], [2])
    assert list(roles) == [TRAINED, TRAINED, VALIDATION, NOT_USED]
    events, comparison = run_to_end(compare_models(images, labels, model, model, roles, "cpu"))
    progress = [e for e in events if isinstance(e, ComparisonProgress)]
    assert progress[-1] == ComparisonProgress("fine-tuned", 8, 8) and progress[0].model == "starting"
    # B-scan 3 is the starting model's own unreviewed prediction: its Dice would be 1.000 and mean nothing
    assert np.isnan(comparison.dice_before[[1, 3]]).all() and np.isnan(comparison.dice_after[[1, 3]]).all()
    assert np.isfinite(comparison.dice_before[[0, 2]]).all()
    np.testing.assert_array_equal(comparison.dice_before, comparison.dice_after)  # the same model twice
    assert comparison.labels.shape == images.shape and comparison.labels.dtype == np.uint8
    assert comparison.summary.startswith("Validation B-scans (not trained on): mean Dice")


def test_the_comparison_of_a_single_bscan(blobs, tiny_checkpoint):
    images, labels = blobs
    model = load_model(tiny_checkpoint)[0]
    _, comparison = run_to_end(compare_models(images[0], labels[0], model, model, [TRAINED], "cpu"))
    assert comparison.labels.shape == (1, 64, 64) and np.isfinite(comparison.dice_after).all()
    with pytest.raises(ValueError, match="roles"):
        run_to_end(compare_models(images, labels, model, model, [TRAINED], "cpu"))


@pytest.mark.parametrize(
    "used_for, before, after, expected",
    [
        (
            ["trained on", "validation", "validation"],
            [0.2, 0.5, 0.7],
            [0.9, 0.7, 0.8],
            "mean Dice 0.600 before, 0.750 after; the new model is better there: keep it.",
        ),
        (
            ["trained on", "validation", "not used"],
            [0.2, 0.8, np.nan],
            [0.9, 0.7, np.nan],
            "mean Dice 0.800 before, 0.700 after; the new model is not better there: Revert is advised",
        ),
        (  # one validation B-scan, +0.02: a hint, and said to be one
            ["trained on", "validation"],
            [0.2, 0.738],
            [0.9, 0.758],
            "the new model is better there: keep it. Judged on 1 B-scan only: validate on 3 or more to be surer.",
        ),
        (  # under 0.01 apart: no change either way
            ["validation", "validation", "validation"],
            [0.70, 0.80, 0.90],
            [0.71, 0.80, 0.90],
            "the new model is about as good there: keep it if its masks need fewer corrections, else Revert.",
        ),
        (
            ["trained on", "trained on", "not used"],
            [0.2, 0.4, np.nan],
            [0.9, 0.7, np.nan],
            "Trained B-scans: mean Dice 0.300 before, 0.800 after. That says how well it learned them, not how",
        ),
        (
            ["trained on", "validation", "not used"],
            [0.2, np.nan, np.nan],
            [0.6, np.nan, np.nan],
            "Trained B-scans: mean Dice 0.200 before, 0.600 after.",
        ),  # validation with nothing annotated
        (
            ["trained on", "not used"],
            [np.nan, np.nan],
            [np.nan, np.nan],
            "No B-scan with annotated pixels to compare the two models on.",
        ),
    ],
)
def test_the_comparison_judges_the_new_model_on_held_out_b_scans_only(used_for, before, after, expected):
    summary = comparison_summary(np.array(used_for), np.array(before), np.array(after))
    assert expected in summary
    assert ("Judged on" in summary) == (0 < used_for.count("validation") < 3 and "Validation" in summary)
