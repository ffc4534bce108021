"""The training engine: events, learning, checkpoints, early stopping, and the old model left untouched."""

import numpy as np
import pytest
import torch

from napari_octfluid.devices import step_down_after_out_of_memory
from napari_octfluid.events import Notice
from napari_octfluid.events import run_to_end as drain
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, load_model
from napari_octfluid.subjects import Subject
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.engine import EpochEnd, StepEnd, TrainConfig, TrainingDataError, one_cycle_factor, train


def blob_data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(150, 20, (n, 64, 64)).astype(np.float32)
    labels = np.zeros((n, 64, 64), np.uint8)
    for i in range(n):
        top, left = rng.integers(5, 35, 2)
        labels[i, top : top + 16, left : left + 20] = 1
    images[labels == 1] = 40
    return BscanSet.from_subjects([Subject(f"blobs{seed}", images, labels)])


def quick_config(**changes):
    values = dict(epochs=3, steps_per_epoch=8, batch_size=4, crop=(64, 64), learning_rate=1e-2, device="cpu")
    values.update(changes)
    return TrainConfig(**values)


def train_tiny_on_blobs(config: TrainConfig, out_dir=None):
    """Train a fresh tiny network on blobs, validated on other blobs, to its end: the events and the result."""
    return drain(train(TransUNet(MODEL_CONFIGS["tiny"]), blob_data(), blob_data(seed=1), config, out_dir))


def test_events_metrics_and_learning(tmp_path):
    torch.manual_seed(0)
    model = TransUNet(MODEL_CONFIGS["tiny"])
    events, result = drain(train(model, blob_data(), blob_data(seed=1), quick_config(epochs=4), tmp_path))
    steps = [e for e in events if isinstance(e, StepEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == 32 and [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert set(steps[0].terms) == {"dice", "focal_tversky", "wbce"}  # the composite reports its parts
    # the time left is the mean step time so far times the steps left (not timed here: the machine may be loaded)
    assert steps[-1].eta_s == 0
    assert all(s.eta_s == pytest.approx(s.elapsed_s / s.step * (s.total_steps - s.step)) for s in steps)
    assert all(0 <= e.val_dice <= 1 and 0 <= e.train_jaccard <= 1 for e in epochs)
    assert epochs[-1].val_dice > epochs[0].val_dice  # it learns the blobs
    assert result.history == epochs


def test_the_model_passed_in_is_never_changed_even_when_stopped():
    model = TransUNet(MODEL_CONFIGS["tiny"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generator = train(model, blob_data(), None, quick_config())
    for _ in range(5):
        next(generator)
    generator.close()  # what Stop does
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_checkpoints_hold_what_reproduces_the_run(tmp_path):
    events, result = train_tiny_on_blobs(quick_config(loss="adaptive_dual_focal"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
    model, payload = load_model(result.last_checkpoint)
    assert payload["loss_spec"] == "adaptive_dual_focal" and payload["epoch"] == 3
    assert payload["train_config"]["crop"] == [64, 64]
    assert payload["data"]["train"]["bscans"] == 6
    assert len(payload["history"]) == 3
    weights = payload["loss_state"]["class_weights"]
    assert not torch.equal(weights, torch.ones(2))  # the ACW layer trained with the model and was saved
    assert events[-1].loss_parameters["class_weights"] == pytest.approx(weights.tolist())


def test_early_stopping_when_validation_stops_improving(tmp_path):
    _, result = train_tiny_on_blobs(quick_config(epochs=10, learning_rate=1e-9, early_stopping_patience=2))
    assert result.stopped_early and len(result.history) < 10


def test_nothing_to_train_on_is_a_clear_error():
    with pytest.raises(ValueError, match="No labelled B-scans"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), BscanSet([], [], [])))


def test_train_config_round_trips():
    config = quick_config(loss="1*dice + 0.5*wbce")
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_replay_fills_part_of_every_batch_and_a_time_budget_stops_the_run(monkeypatch):
    from napari_octfluid.training import engine

    seen = []
    real = engine.random_crops
    monkeypatch.setattr(
        engine, "random_crops", lambda data, n, *a: seen.append((data.sources[0], n)) or real(data, n, *a)
    )
    replay = blob_data(seed=5)
    events, result = drain(
        train(
            TransUNet(MODEL_CONFIGS["tiny"]),
            blob_data(),
            None,
            quick_config(epochs=100, replay_fraction=0.5, time_budget_s=0.0),
            replay_data=replay,
        )
    )
    assert seen[:2] == [("blobs0[0]", 2), ("blobs5[0]", 2)]
    assert result.stopped_early and len(result.history) == 1 and len(events) == 2  # one step, then the epoch


def test_calibration_picks_the_threshold_with_the_best_training_dice():
    from napari_octfluid.training.calibrate import THRESHOLDS, calibrate_threshold

    torch.manual_seed(0)
    events, result = drain(train(TransUNet(MODEL_CONFIGS["tiny"]), blob_data(), None, quick_config(epochs=2)))
    threshold, dice = calibrate_threshold(result.model, blob_data())
    assert set(dice) == {float(t) for t in THRESHOLDS} and dice[threshold] == max(dice.values())


class RunsOutOfMemoryAbove(torch.nn.Module):
    """A tiny TransUNet that fails as CUDA does when a batch holds more than ``limit`` crops."""

    def __init__(self, limit):
        super().__init__()
        self.inner, self.limit = TransUNet(MODEL_CONFIGS["tiny"]), limit

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_running_out_of_memory_halves_the_batch_and_says_so():
    events, result = drain(train(RunsOutOfMemoryAbove(1), blob_data(), None, quick_config(epochs=2, steps_per_epoch=3)))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == [
        "Out of memory on cpu: going on with batch size 2.",
        "Out of memory on cpu: going on with batch size 1.",
    ]
    assert len([e for e in events if isinstance(e, StepEnd)]) == 6 and len(result.history) == 2


def test_out_of_memory_with_one_crop_on_the_cpu_is_a_clear_memory_error():
    with pytest.raises(MemoryError, match="Not enough memory for even one crop"):
        drain(train(RunsOutOfMemoryAbove(0), blob_data(), None, quick_config(epochs=1, steps_per_epoch=1)))


def test_out_of_memory_with_one_crop_on_the_gpu_moves_to_the_cpu():
    device, batch, message = step_down_after_out_of_memory(
        RuntimeError("CUDA out of memory"), torch.device("cuda"), 1, "crop"
    )
    assert (device.type, batch) == ("cpu", 1) and "on the CPU" in message
    with pytest.raises(RuntimeError, match="shapes do not match"):  # other errors are not mistaken for memory
        step_down_after_out_of_memory(RuntimeError("shapes do not match"), torch.device("cpu"), 4, "crop")


def test_labels_without_any_fluid_are_refused_unless_replay_brings_fluid():
    empty = BscanSet.from_subjects([Subject("e", np.full((2, 64, 64), 100, np.uint8), np.zeros((2, 64, 64), np.uint8))])
    with pytest.raises(TrainingDataError, match="would learn to find no fluid"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), empty, None, quick_config()))
    events, _ = drain(
        train(
            TransUNet(MODEL_CONFIGS["tiny"]),
            empty,
            None,
            quick_config(epochs=1, steps_per_epoch=2),
            replay_data=blob_data(),
        )
    )
    assert len([e for e in events if isinstance(e, StepEnd)]) == 2


@pytest.mark.parametrize(
    "progress, factor",
    [
        (0.0, 1 / 25),  # OneCycleLR starts at max_lr / div_factor
        (0.05, 1 / 25 + (1 - 1 / 25) / 2),  # half-way through the warm-up, by the cosine
        (0.1, 1.0),  # the peak at pct_start
        (0.55, 1 / 25e4 + (1 - 1 / 25e4) / 2),  # half-way down
        (1.0, 1 / 25e4),  # ends at max_lr / (div_factor * final_div_factor)
        (1.7, 1 / 25e4),  # past the end (a step that overran the budget) stays at the end
    ],
)
def test_one_cycle_factor_follows_the_cosine_one_cycle(progress, factor):
    assert one_cycle_factor(progress) == pytest.approx(factor)


def test_one_cycle_factor_matches_torch_one_cycle_lr():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimiser = torch.optim.AdamW([parameter], lr=1.0)
    total = 10001  # OneCycleLR's phases end at steps 999.1 and 10000: progress is about step / 10000
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1.0, total_steps=total, pct_start=0.1)
    for step in range(total):
        if step in (0, 370, 1000, 4200, 10000):
            assert schedule.get_last_lr()[0] == pytest.approx(one_cycle_factor(step / 10000), rel=2e-3)
        optimiser.step()
        schedule.step()


def test_a_time_budget_schedule_follows_the_clock():
    from napari_octfluid.training.schedule import one_cycle_schedule

    now = [0.0]
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    config = quick_config(epochs=1000, steps_per_epoch=10, learning_rate=1e-3, time_budget_s=120.0)
    schedule = one_cycle_schedule(optimiser, config, 10000, lambda: now[0])
    rates = {}
    for seconds in (6.0, 12.0, 66.0, 120.0):  # a step every 6 s: 20 steps in the budget, of 10000 planned
        now[0] = seconds
        optimiser.step()
        schedule.step()
        rates[seconds] = schedule.get_last_lr()[0]
    assert rates[12.0] == pytest.approx(1e-3)  # the peak at 10 % of the time, not of the steps
    assert rates[6.0] == pytest.approx(1e-3 * one_cycle_factor(0.05))
    assert rates[66.0] == pytest.approx(1e-3 * one_cycle_factor(0.55))
    assert rates[120.0] == pytest.approx(1e-3 / 25e4)


def test_a_time_budgeted_run_reaches_the_peak_learning_rate_and_ends_in_time(monkeypatch):
    # planned over "1000 epochs" by steps, a 2-minute fine-tune would never leave the warm-up. The engine's clock
    # is faked (each reading 0.05 s later) so that a busy machine, where a step can take seconds, cannot fail this.
    from napari_octfluid.training import engine

    readings = iter(np.arange(0.0, 1e4, 0.05))
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(readings)))
    events, result = drain(
        train(
            TransUNet(MODEL_CONFIGS["tiny"]),
            blob_data(),
            None,
            quick_config(epochs=1000, steps_per_epoch=10, learning_rate=1e-3, time_budget_s=3.0),
        )
    )
    rates = [e.learning_rate for e in events if isinstance(e, StepEnd)]
    assert result.stopped_early and 5 < len(rates) < 10000
    assert max(rates) > 0.5e-3  # by steps alone it would stay under 0.05e-3
    assert rates[-1] < 0.2e-3
    assert all(e.eta_s <= 3.0 for e in events if isinstance(e, StepEnd))
    assert events[-1].elapsed_s >= 3.0


class FixedProbability(torch.nn.Module):
    """Logits whose fluid probability is a fixed map, whatever the B-scan."""

    def __init__(self, probability):
        super().__init__()
        self.logit = torch.logit(torch.as_tensor(probability, dtype=torch.float64)).float()

    def forward(self, x):
        return torch.stack([torch.zeros_like(self.logit), self.logit])[None]


def test_calibration_reaches_above_0_99_when_the_model_is_that_sure():
    from napari_octfluid.training.calibrate import calibrate_threshold

    labels = np.zeros((1, 64, 64), np.uint8)
    labels[0, 20:40, 20:40] = 1
    probability = np.where(labels[0] == 1, 0.997, 0.993)  # background at 0.993: only a threshold above it is right
    data = BscanSet.from_subjects([Subject("sure", np.full((1, 64, 64), 100, np.uint8), labels)])
    threshold, dice = calibrate_threshold(FixedProbability(probability), data)
    assert threshold == 0.995 and dice[0.995] == pytest.approx(1.0) and dice[0.99] < 0.2


def test_decoder_only_training_keeps_the_encoder_and_bottleneck_and_changes_the_decoder():
    model = TransUNet(MODEL_CONFIGS["tiny"])
    _, result = drain(train(model, blob_data(), None, quick_config(epochs=1, trainable="decoder")))
    before, after = model.state_dict(), result.model.state_dict()
    # parameters only: BatchNorm running statistics are buffers and follow freeze_batchnorm instead
    for name, _ in model.named_parameters():
        unchanged = torch.equal(before[name], after[name])
        assert unchanged == (name.split(".")[0] in ("encoder", "bottleneck")), name


def test_an_unknown_trainable_part_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of all, decoder"):
        next(train(TransUNet(MODEL_CONFIGS["tiny"]), blob_data(), None, quick_config(trainable="encoder")))


@pytest.mark.parametrize("steps", [1, 2, 10])
def test_short_runs_follow_the_one_cycle_schedule(steps):
    """OneCycleLR divided by zero for 10 steps or fewer (issue 19); the schedule is the same cosine at any length."""
    events, result = drain(
        train(
            TransUNet(MODEL_CONFIGS["tiny"]),
            blob_data(),
            None,
            quick_config(epochs=1, steps_per_epoch=steps, learning_rate=1e-2),
        )
    )
    rates = [e.learning_rate for e in events if isinstance(e, StepEnd)]
    assert rates == pytest.approx([1e-2 * one_cycle_factor(step / steps) for step in range(1, steps + 1)])
    assert len(result.history) == 1
