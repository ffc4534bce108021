"""Fine-tune's job as the widget runs it in its worker: the starting weights loaded and checked, the B-scans chosen
from the labels, then the run (issue 20: none of this on napari's interface thread)."""

import numpy as np
import pytest

from napari_octfluid.events import run_to_end
from napari_octfluid.model import CheckpointError, TransUNet, load_model
from napari_octfluid.training import finetune
from napari_octfluid.training.finetune import BscanChoice, FineTuned, load_and_finetune, save_fine_tuned

VOLUME = (np.full((3, 32, 32), 100, np.uint8), np.zeros((3, 32, 32), np.uint8), "scan")


@pytest.fixture
def fake_train(monkeypatch):
    """The engine replaced by one that records what it was given and returns at once."""
    seen = []

    def train(model, train_data, val_data, config, out_dir, loss, replay_data):
        seen.append({"model": model, "train": len(train_data), "val": 0 if val_data is None else len(val_data)})
        return "trained"
        yield

    monkeypatch.setattr(finetune, "train", train)
    return seen


def with_fluid(bscans):
    labels = VOLUME[1].copy()
    labels[list(bscans), 10:20, 10:20] = 1
    return (VOLUME[0], labels, "scan")


@pytest.mark.parametrize(
    "bscans_with_fluid, choice, trained, validated",
    [
        ((0, 2), BscanChoice(), [0, 2], []),  # an expert's mask: every B-scan with fluid
        ((0, 2), BscanChoice(validation=[2]), [0], [2]),  # held out for validation: not trained on
        ((), BscanChoice(explicit=[1]), [1], []),  # the explicit list wins
        ((0,), BscanChoice(reviewed=np.array([False, True, True]), model="m"), [1, 2], []),  # reviewed ones
    ],
)
def test_the_job_loads_the_weights_and_chooses_the_bscans(
    fake_train, tiny_checkpoint, bscans_with_fluid, choice, trained, validated
):
    _, run = run_to_end(load_and_finetune(tiny_checkpoint, with_fluid(bscans_with_fluid), choice, None, adapt=False))
    assert isinstance(run, FineTuned) and run.result == "trained"
    assert (run.trained_on, run.validated_on) == (trained, validated)
    assert isinstance(run.starting_model, TransUNet) and fake_train[0]["model"] is run.starting_model
    assert (fake_train[0]["train"], fake_train[0]["val"]) == (len(trained), len(validated))


@pytest.mark.parametrize("weights", [None, "missing.pt", "junk.pt"])
def test_weights_that_cannot_start_a_training_are_refused(fake_train, tmp_path, weights):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    path = None if weights is None else tmp_path / weights
    with pytest.raises(CheckpointError):
        run_to_end(load_and_finetune(path, with_fluid([0]), BscanChoice(), None, adapt=False))
    assert fake_train == []


def test_labels_with_nothing_to_train_on_are_refused(fake_train, tiny_checkpoint):
    with pytest.raises(ValueError, match="No labelled B-scans to train on"):
        run_to_end(load_and_finetune(tiny_checkpoint, VOLUME, BscanChoice(), None, adapt=False))
    assert fake_train == []


def test_keep_saves_the_model_with_where_it_came_from(tiny_checkpoint, tmp_path):
    from types import SimpleNamespace

    from napari_octfluid.losses import build_loss

    model, _ = load_model(tiny_checkpoint)
    result = SimpleNamespace(model=model, loss=build_loss("1*dice + 0.5*wbce"), history=[])
    _, path = run_to_end(save_fine_tuned(tmp_path / "kept.pt", result, "composite", tiny_checkpoint))
    kept, payload = load_model(path)
    assert path == tmp_path / "kept.pt" and payload["fine_tuned_from"] == str(tiny_checkpoint)
    assert payload["loss_spec"] == "1*dice + 0.5*wbce"  # the loss it was tuned with, not the widget's name


def test_keep_by_name_makes_a_model_the_library_offers_for_its_device(tiny_checkpoint, tmp_path):
    from types import SimpleNamespace

    from napari_octfluid.losses import build_loss
    from napari_octfluid.model_library import kept_models, model_for_device, model_path

    model, _ = load_model(tiny_checkpoint)
    result = SimpleNamespace(model=model, loss=build_loss("dice"), history=[])
    target = model_path("Clinic B", tmp_path)
    run_to_end(save_fine_tuned(target, result, "dice", tiny_checkpoint, name="Clinic B", device="Topcon Maestro2"))
    [kept] = kept_models(tmp_path)
    assert (kept.name, kept.device, kept.path) == ("Clinic B", "Topcon Maestro2", target)
    assert kept.fine_tuned_from == str(tiny_checkpoint)
    assert model_for_device("TOPCON maestro2", kept_models(tmp_path)) == kept
