"""Fine-tuning that adapts to how far the model disagrees with the corrections (issue 19, item 4): the rule, the
agreement it is decided on (hand-computed Dice), and the job that applies it."""

import numpy as np
import pytest

from napari_octfluid.events import Notice, run_to_end
from napari_octfluid.inference import PredictResult
from napari_octfluid.training import finetune
from napari_octfluid.training.finetune import (
    ADAPT_BELOW_AGREEMENT,
    WHOLE_NETWORK,
    BscanChoice,
    adaptation_for,
    agreement_counts,
    finetune_config,
    load_and_finetune,
)


@pytest.mark.parametrize(
    ("agreement", "expected"),
    [
        (0.95, {}),  # agrees: the preset
        (ADAPT_BELOW_AGREEMENT, {}),  # at the line: still the preset
        (ADAPT_BELOW_AGREEMENT - 0.01, WHOLE_NETWORK),
        (0.0, WHOLE_NETWORK),
        (float("nan"), {}),  # nothing to measure (no fluid anywhere): the preset
    ],
)
def test_the_rule(agreement, expected):
    assert adaptation_for(agreement) == expected


def test_the_rule_goes_further_than_the_preset():
    preset = finetune_config((256, 256))
    adapted = finetune_config((256, 256), **adaptation_for(0.1))
    assert (preset.trainable, preset.change_kept) == ("decoder", 0.5)
    assert (adapted.trainable, adapted.change_kept) == ("all", 1.0)


@pytest.fixture
def model_predicts(monkeypatch):
    """``finetune.predict`` replaced by one that returns the given masks for whatever B-scans it is handed."""
    calls = []

    def install(masks):
        def predict(images, model, device="auto", *args, **kwargs):
            calls.append(len(images))
            yield Notice("predicting")
            labels = np.asarray(masks, np.uint8)[: len(images)]
            return PredictResult(labels, labels.astype(np.float32), "cpu", 0.0)

        monkeypatch.setattr(finetune, "predict", predict)
        return calls

    return install


def volume_with(fluid_rows):
    labels = np.zeros((3, 32, 32), np.uint8)
    for z, rows in fluid_rows.items():
        labels[z, rows] = 1
    return np.full((3, 32, 32), 50, np.uint8), labels


def test_agreement_is_the_pooled_dice_on_the_chosen_bscans(model_predicts):
    images, labels = volume_with({0: slice(0, 2), 2: slice(0, 4)})  # 64 and 128 fluid pixels
    masks = np.zeros((2, 32, 32), np.uint8)
    masks[0, 0:2] = 1  # B-scan 0: exact (64 of 64)
    masks[1, 0:2] = 1  # B-scan 2: 64 of its 128
    calls = model_predicts(masks)
    events, counts = run_to_end(agreement_counts(None, images, labels, [0, 2]))
    assert float(counts.dice) == pytest.approx(2 * 128 / (128 + 192))
    assert calls == [2] and [e.message for e in events if isinstance(e, Notice)] == ["predicting"]  # only the chosen


def test_not_annotated_pixels_do_not_count_against_the_model(model_predicts):
    images, labels = volume_with({0: slice(0, 2)})
    labels[0, 4:] = 255  # not annotated
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[0, 0:2] = masks[0, 4:] = 1  # fluid where nobody said what there is
    model_predicts(masks)
    _, counts = run_to_end(agreement_counts(None, images, labels, [0]))
    assert float(counts.dice) == 1.0


@pytest.fixture
def recorded_config(monkeypatch):
    seen = []

    def train(model, train_data, val_data, config, out_dir, loss, replay_data):
        seen.append(config)
        return "trained"
        yield

    monkeypatch.setattr(finetune, "train", train)
    return seen


@pytest.mark.parametrize(
    ("masks_share", "trainable", "kept", "said"),
    [(1.0, "decoder", 0.5, "fine-tuning as set"), (0.0, "all", 1.0, "the whole network")],
)
def test_the_job_adapts_and_says_so(
    model_predicts, recorded_config, tiny_checkpoint, masks_share, trainable, kept, said
):
    images, labels = volume_with({0: slice(0, 4), 1: slice(0, 4)})
    model_predicts(labels[[0, 1]] * np.uint8(masks_share))  # the corrections exactly, or no fluid at all
    config = finetune_config(images.shape, device="cpu")
    events, run = run_to_end(load_and_finetune(tiny_checkpoint, (images, labels, "scan"), BscanChoice(), config))
    assert (recorded_config[0].trainable, recorded_config[0].change_kept) == (trainable, kept)
    assert run.config is recorded_config[0] and run.agreement == pytest.approx(masks_share)
    assert any(said in e.message for e in events if isinstance(e, Notice))


def test_without_adapt_the_settings_are_used_as_given(model_predicts, recorded_config, tiny_checkpoint):
    images, labels = volume_with({0: slice(0, 4)})
    calls = model_predicts(np.zeros((1, 32, 32)))
    config = finetune_config(images.shape, device="cpu")
    _, run = run_to_end(load_and_finetune(tiny_checkpoint, (images, labels, "s"), BscanChoice(), config, adapt=False))
    assert recorded_config == [config] and calls == [] and np.isnan(run.agreement)


@pytest.mark.parametrize(("spacing", "rows"), [(None, 32), (0.00387, 32), (2 * 0.00387, 64), (0.00387 / 2, 16)])
def test_fine_tuning_learns_at_the_models_axial_pixel_size(recorded_data, tiny_checkpoint, spacing, rows):
    """A scan whose file gives its axial spacing is learnt at the model's (Spectralis') rows, as prediction sees it;
    without a spacing, or at the model's, at its own rows."""
    from napari_octfluid.model import load_model

    model, _ = load_model(tiny_checkpoint)
    images, labels = volume_with({0: slice(10, 20), 1: slice(10, 20)})
    labels[2] = 255
    config = finetune_config(images.shape, device="cpu")
    run_to_end(finetune.prepare_and_train(model, (images, labels, "s"), [0], [1], config, axial_spacing_mm=spacing))
    [(train_data, val_data)] = recorded_data
    assert train_data.images[0].shape == val_data.images[0].shape == (rows, 32)
    assert int((train_data.labels[0] == 1).sum()) == 10 * rows // 32 * 32  # the lesion's rows scale with the B-scan


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "expected"),
    [
        (150, 0, 50, 2 * 150 / (300 + 50)),  # 200 fluid pixels corrected: judged
        (0, 500, 0, float("nan")),  # corrections that only erased false fluid: nothing to judge by
        (100, 0, 50, float("nan")),  # 150 fluid pixels: too few
    ],
)
def test_agreement_is_judged_only_on_enough_corrected_fluid(tp, fp, fn, expected):
    from napari_octfluid.metrics import Confusion
    from napari_octfluid.training.finetune import judged_agreement

    agreement = judged_agreement(Confusion(np.array([tp]), np.array([fp]), np.array([fn])))
    assert agreement == pytest.approx(expected, nan_ok=True)
    assert adaptation_for(agreement) == (
        {} if np.isnan(expected) or expected >= ADAPT_BELOW_AGREEMENT else WHOLE_NETWORK
    )
