"""Keeping a share of the fine-tuning change (WiSE-FT): the maths by hand, and the engine's blended run."""

import numpy as np
import pytest
import torch
from test_engine import blob_data, quick_config  # tests/training is on the path (rootdir import mode)

from napari_octfluid.events import run_to_end as drain
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, load_model
from napari_octfluid.training.blend import blend_weights, starting_state
from napari_octfluid.training.engine import EpochEnd, TrainConfig, train


def linear_with(weight: float, bias: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(weight)
        layer.bias.fill_(bias)
    return layer


# start (w, b) = (0, 4), tuned (2, -4): start + kept * (tuned - start), by hand
@pytest.mark.parametrize("kept, weight, bias", [(1.0, 2.0, -4.0), (0.5, 1.0, 0.0), (0.25, 0.5, 2.0)])
def test_blend_moves_the_given_share_of_the_way_from_start_to_tuned(kept, weight, bias):
    start, tuned = linear_with(0.0, 4.0), linear_with(2.0, -4.0)
    blended = blend_weights(starting_state(start), tuned, kept)
    assert blended.weight.item() == pytest.approx(weight) and blended.bias.item() == pytest.approx(bias)
    assert tuned.weight.item() == 2.0 and blended is not tuned  # the trained model is left as it was


@pytest.mark.parametrize("kept", [0.0, -0.5, 1.5, float("nan")])
def test_a_share_outside_0_to_1_is_a_clear_error(kept):
    with pytest.raises(ValueError, match="above 0 and at most 1"):
        blend_weights(starting_state(linear_with(0, 0)), linear_with(1, 1), kept)
    with pytest.raises(ValueError, match="above 0 and at most 1"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), blob_data(), None, quick_config(change_kept=kept)))


def test_blending_different_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="different layers"):
        blend_weights(starting_state(torch.nn.Linear(1, 1)), torch.nn.Conv2d(1, 1, 1), 0.5)


def test_a_run_keeping_half_the_change_returns_validates_and_saves_the_blend(tmp_path):
    torch.manual_seed(0)
    start = TransUNet(MODEL_CONFIGS["tiny"])
    _, full = drain(train(start, blob_data(), None, quick_config(epochs=1)))
    events, half = drain(
        train(start, blob_data(), blob_data(seed=1), quick_config(epochs=1, change_kept=0.5), tmp_path)
    )
    # the blend only changes what the run hands back, not how it trains: same seed, same trajectory
    for name, value in half.model.state_dict().items():
        if value.is_floating_point():
            expected = (start.state_dict()[name] + full.model.state_dict()[name]) / 2
            torch.testing.assert_close(value, expected, msg=name)
    assert not torch.equal(half.model.head.weight, full.model.head.weight)
    saved, payload = load_model(tmp_path / "last.pt")
    assert torch.equal(saved.head.weight, half.model.head.weight)
    assert payload["train_config"]["change_kept"] == 0.5
    assert TrainConfig.from_dict(payload["train_config"]).change_kept == 0.5
    assert [type(e) for e in events].count(EpochEnd) == 1
    assert np.isfinite(events[-1].val_dice)
