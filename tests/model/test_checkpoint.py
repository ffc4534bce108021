"""Checkpoints open without running code, refuse what they cannot use, and are written atomically."""

import os

import pytest
import torch

from napari_octfluid.model import (MODEL_CONFIGS, CheckpointError, TransUNet, TransUNetConfig, load_model,
                                   save_checkpoint)


def test_round_trip_keeps_weights_config_and_extras(tmp_path):
    model = TransUNet(MODEL_CONFIGS["tiny"])
    path = save_checkpoint(tmp_path / "m.pt", model, loss_spec="1*dice", metrics={"dice": 0.5})
    loaded, payload = load_model(path)
    assert loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert payload["loss_spec"] == "1*dice" and payload["metrics"] == {"dice": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temp file left


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    RunsCode.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": "octfluid-checkpoint", "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="could run code"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"# README\nplain text\n"])
def test_damaged_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"^bad.pt: not a (readable )?checkpoint"):
        load_model(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", TransUNet(MODEL_CONFIGS["tiny"]))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(path)


def test_foreign_checkpoint_says_what_it_holds(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match=r"not an octfluid checkpoint \(it holds \['epoch', 'state_dict'\]\)"):
        load_model(path)


def test_other_class_count_is_refused(tmp_path):
    config = TransUNetConfig(**{**MODEL_CONFIGS["tiny"].__dict__, "num_classes": 4})
    path = save_checkpoint(tmp_path / "m.pt", TransUNet(config))
    with pytest.raises(CheckpointError, match="4 classes, but 2 are needed"):
        load_model(path, num_classes=2)


def test_other_architecture_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", TransUNet(MODEL_CONFIGS["tiny"]))
    payload = torch.load(path, weights_only=True)
    payload["model_config"] = MODEL_CONFIGS["paper"].to_dict()  # weights of one network, settings of another
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(path)
