"""The pull back towards the starting weights (decoupled L2-SP): the maths by hand, and the engine's run."""

import pytest
import torch
from test_engine import blob_data, quick_config  # tests/training is on the path (rootdir import mode)

from napari_octfluid.events import run_to_end as drain
from napari_octfluid.model import MODEL_CONFIGS, TransUNet
from napari_octfluid.training.anchor import StartingPointPull
from napari_octfluid.training.engine import TrainConfig, train


# a weight that started at 1 and was stepped to 3: after the pull it lies at 3 - lr * strength * (3 - 1), by hand
@pytest.mark.parametrize(
    ("strength", "learning_rate", "expected"),
    [
        (0.0, 1e-3, 3.0),  # no pull
        (100.0, 1e-3, 2.8),  # a tenth of the way back
        (500.0, 1e-3, 2.0),  # half of it
        (1e9, 1e-3, 1.0),  # never past the start
        (100.0, 0.0, 3.0),  # a step at rate 0 moves nothing back
    ],
)
def test_each_step_moves_the_weights_that_share_of_the_way_back(strength, learning_rate, expected):
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    pull = StartingPointPull([weight], strength)
    with torch.no_grad():
        weight.add_(torch.tensor([2.0, 2.0]))  # what an optimiser step did: 1 -> 3, -2 -> 0
    pull(learning_rate)
    moved_back = (3.0 - expected) / 2.0  # the same share for every weight, whatever its size
    torch.testing.assert_close(weight.detach(), torch.tensor([expected, 0.0 - 2.0 * moved_back]))


@pytest.mark.parametrize("strength", [-1.0, float("nan")])
def test_a_negative_or_undefined_pull_is_a_clear_error(strength):
    with pytest.raises(ValueError, match="0 \\(none\\) or more"):
        StartingPointPull([torch.nn.Parameter(torch.zeros(1))], strength)
    with pytest.raises(ValueError, match="0 \\(none\\) or more"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), blob_data(), None, quick_config(start_pull=strength)))


def test_a_run_pulled_all_the_way_back_ends_at_the_start_and_a_weaker_pull_in_between():
    torch.manual_seed(0)
    start = TransUNet(MODEL_CONFIGS["tiny"])
    before = {name: p.detach().clone() for name, p in start.named_parameters()}

    def distance(config: TrainConfig) -> float:
        _, result = drain(train(start, blob_data(), None, config))
        learnt = dict(result.model.named_parameters())
        return sum(float((learnt[name] - value).norm() ** 2) for name, value in before.items()) ** 0.5

    free, pulled, held = (distance(quick_config(epochs=1, start_pull=s)) for s in (0.0, 300.0, 1e12))
    assert held == 0.0  # every step returned to the start: the learnt weights are the starting ones exactly
    assert 0.0 < pulled < free
    assert TrainConfig.from_dict(quick_config(start_pull=2.0).to_dict()).start_pull == 2.0  # saved with the run
