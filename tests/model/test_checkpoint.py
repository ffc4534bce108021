"""Checkpoints open without running code, refuse what they cannot use, and are written atomically."""

import os

import pytest
import torch

from napari_octfluid.model import (
    MODEL_CONFIGS,
    CheckpointError,
    TransUNet,
    TransUNetConfig,
    load_model,
    save_checkpoint,
)


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


# --- issue 21: checkpoints that would exhaust memory (finding 5), nonsense weights (finding 8), malformed settings

from bad_files import GIGANTIC_CONFIG, checkpoint_with, inflating_checkpoint  # noqa: E402

from napari_octfluid import memory  # noqa: E402
from napari_octfluid.model import checkpoint as checkpoint_module  # noqa: E402
from napari_octfluid.model.checkpoint import CheckpointTooLargeError  # noqa: E402


def _one_line(error: BaseException, name: str) -> str:
    message = str(error)
    assert "\n" not in message and message.startswith(f"{name}: "), message
    return message


@pytest.fixture
def torch_load_never_runs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(checkpoint_module.torch, "load", refuse)


@pytest.fixture
def model_never_built(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(checkpoint_module, "TransUNet", refuse)


def test_inflating_checkpoint_is_refused_before_torch_reads_it(tmp_path, monkeypatch, torch_load_never_runs):
    path = inflating_checkpoint(tmp_path / "bomb.pt", 64 * 2**20)
    assert path.stat().st_size < 500_000  # 64 MiB once inflated
    monkeypatch.setenv(memory.ENV_VAR, "16MiB")
    with pytest.raises(CheckpointTooLargeError) as caught:
        load_model(path)
    assert isinstance(caught.value, CheckpointError) and isinstance(caught.value, MemoryError)
    assert _one_line(caught.value, "bomb.pt").startswith(
        "bomb.pt: Loading this checkpoint needs 64.1 MiB, more than octfluid's memory limit of 16.0 MiB"
    )


def test_checkpoint_inflating_beyond_any_model_file_is_refused_whatever_the_limit(
    tmp_path, monkeypatch, torch_load_never_runs
):
    path = inflating_checkpoint(tmp_path / "bomb.pt", 8 * 2**20)
    monkeypatch.setattr(checkpoint_module, "MAX_CHECKPOINT_BYTES", 4 * 2**20)  # stands for the 2 GiB cap
    monkeypatch.setenv(memory.ENV_VAR, "1TiB")
    with pytest.raises(
        CheckpointTooLargeError,
        match=r"^bomb.pt: refused, it would inflate to 8.\d MiB, more than "
        r"any octfluid checkpoint \(4.0 MiB at most\)",
    ):
        load_model(path)


def test_checkpoint_within_the_limit_still_loads(tmp_path):
    _, payload = load_model(inflating_checkpoint(tmp_path / "padded.pt", 2**20))
    assert payload["padding"].shape == (2**20,)


def test_config_of_a_gigantic_model_is_refused_before_it_is_built(tmp_path, model_never_built):
    path = checkpoint_with(tmp_path / "giant.pt", GIGANTIC_CONFIG)
    assert path.stat().st_size < 500_000
    with pytest.raises(CheckpointTooLargeError) as caught:
        load_model(path)
    assert _one_line(caught.value, "giant.pt") == (
        "giant.pt: describes a TransUNet of 43,556,364,290 parameters; octfluid builds at most 200,000,000 (the "
        "paper's has 2,252,546): the file is damaged or not an octfluid model."
    )


def test_model_over_the_memory_limit_is_refused_before_it_is_built(tmp_path, monkeypatch, model_never_built):
    path = checkpoint_with(tmp_path / "wide.pt", {"filter_num": [64, 128, 256, 512, 1024]})  # 28 M parameters
    monkeypatch.setenv(memory.ENV_VAR, "4MiB")
    with pytest.raises(CheckpointTooLargeError, match=r"^wide.pt: Building its model \([\d,]+ parameters\) needs"):
        load_model(path)


@pytest.mark.parametrize(
    "config",
    [
        MODEL_CONFIGS["tiny"],
        MODEL_CONFIGS["paper"],
        TransUNetConfig(
            filter_num=(3, 5, 7),
            stack_num_down=3,
            stack_num_up=1,
            embed_dim=12,
            num_heads=3,
            num_mlp=20,
            num_transformer=3,
            pos_grid=(2, 5),
            num_classes=4,
        ),
    ],
)
def test_parameter_count_is_computed_exactly_without_building(config):
    from napari_octfluid.model import count_parameters

    model = TransUNet(config)
    assert config.parameter_count() == count_parameters(model)
    state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert state_bytes <= config.build_bytes() <= 1.5 * state_bytes  # plus torch's template transformer block


def _first_weight(state):
    return next(key for key, value in state.items() if value.dtype.is_floating_point and value.numel() > 1)


def _poison(value):
    def change(state):
        key = _first_weight(state)
        state[key] = state[key].clone()
        state[key].view(-1)[3] = value

    return change


def _retype(dtype):
    def change(state):
        key = _first_weight(state)
        state[key] = state[key].to(dtype)

    return change


@pytest.mark.parametrize(
    "change, phrase",
    [
        (_poison(float("nan")), "holds 1 NaN or infinite value(s): the model diverged in training"),
        (_poison(float("inf")), "holds 1 NaN or infinite value(s)"),
        (_retype(torch.int64), "is stored as int64, not as floating point"),
        (_retype(torch.int32), "is stored as int32, not as floating point"),
        (_retype(torch.complex64), "is stored as complex64, not as floating point"),
        (_retype(torch.bool), "is stored as bool, not as floating point"),
    ],
    ids=["nan", "inf", "int64", "int32", "complex", "bool"],
)
def test_weights_that_would_load_and_predict_nonsense_are_refused(tmp_path, change, phrase, model_never_built):
    path = checkpoint_with(tmp_path / "odd.pt", state_change=change)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = _one_line(caught.value, "odd.pt")
    assert phrase in message and "'encoder." in message  # names the weight


def test_batch_norm_counters_are_the_one_integer_allowed(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", TransUNet(MODEL_CONFIGS["tiny"]))
    state = torch.load(path, weights_only=True)["model_state"]
    assert {str(v.dtype) for k, v in state.items() if k.endswith("num_batches_tracked")} == {"torch.int64"}
    load_model(path)


def test_a_batch_norm_counter_stored_as_int32_is_refused(tmp_path):
    def counter(dtype):
        def change(state):
            key = next(k for k in state if k.endswith("num_batches_tracked"))
            state[key] = state[key].to(dtype)

        return change

    with pytest.raises(CheckpointError, match="num_batches_tracked' is stored as int32"):
        load_model(checkpoint_with(tmp_path / "int32.pt", state_change=counter(torch.int32)))


@pytest.mark.parametrize(
    "change, phrase",
    [
        (lambda state: state.__setitem__(_first_weight(state), [1.0, 2.0]), "is a list, not a tensor"),
        (lambda state: state.__setitem__(_first_weight(state), "weights"), "is a str, not a tensor"),
    ],
    ids=["list", "string"],
)
def test_weights_that_are_not_tensors_are_refused(tmp_path, change, phrase):
    with pytest.raises(CheckpointError, match=phrase):
        load_model(checkpoint_with(tmp_path / "odd.pt", state_change=change))


def test_model_state_that_is_not_a_table_is_refused(tmp_path):
    path = checkpoint_with(tmp_path / "odd.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_state"] = [1, 2, 3]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"^odd.pt: its model_state is a list, not weights by name"):
        load_model(path)


MALFORMED_CONFIGS = [
    ({"num_heads": 3}, "num_heads (3) must divide embed_dim (16)"),
    ({"filter_num": []}, "filter_num must hold 1 to 8 numbers, not 0"),
    ({"filter_num": [4] * 9}, "filter_num must hold 1 to 8 numbers, not 9"),
    ({"filter_num": "abc"}, "filter_num must be a list of whole numbers, not 'abc'"),
    ({"filter_num": [4, 8, 8.0, 16, 16]}, "filter_num[2] must be a whole number, not 8.0"),
    ({"filter_num": [4, 8, -8, 16, 16]}, "filter_num[2] must be from 1 to 4096, not -8"),
    ({"pos_grid": [-4, 4]}, "pos_grid[0] must be from 1 to 1024, not -4"),
    ({"pos_grid": [0, 4]}, "pos_grid[0] must be from 1 to 1024, not 0"),
    ({"pos_grid": [4]}, "pos_grid must hold exactly 2 numbers, not 1"),
    ({"embed_dim": "16"}, "embed_dim must be a whole number, not '16'"),
    ({"num_heads": True}, "num_heads must be a whole number, not True"),
    ({"num_mlp": float("nan")}, "num_mlp must be a whole number, not nan"),
    ({"num_mlp": None}, "num_mlp must be a whole number, not None"),
    ({"stack_num_down": 0}, "stack_num_down must be from 1 to 16, not 0"),
    ({"num_transformer": 10**9}, "num_transformer must be from 1 to 16, not 1000000000"),
    ({"in_channels": 3}, "in_channels must be exactly 1, not 3"),
    ({"num_classes": 1}, "num_classes must be from 2 to 255, not 1"),
    ({"num_classes": [2]}, "num_classes must be a whole number, not (2,)"),
    ({"dropout": 0.1}, "unknown model settings ['dropout']"),
]


@pytest.mark.parametrize("changes, phrase", MALFORMED_CONFIGS, ids=[str(c) for c, _ in MALFORMED_CONFIGS])
def test_malformed_model_settings_are_one_line_naming_the_file(tmp_path, changes, phrase, model_never_built):
    path = checkpoint_with(tmp_path / "odd.pt", changes)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = _one_line(caught.value, "odd.pt")
    assert message.startswith("odd.pt: its model settings are not a TransUNet's (") and phrase in message, message


@pytest.mark.parametrize("settings", [[1, 2], "paper", None, 7])
def test_model_settings_that_are_not_a_table_are_refused(tmp_path, settings):
    path = checkpoint_with(tmp_path / "odd.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_config"] = settings
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"^odd.pt: its model settings are not a TransUNet's \(the settings "):
        load_model(path)


def test_torchs_legacy_format_is_refused_before_it_is_unpickled(tmp_path, torch_load_never_runs):
    path = tmp_path / "old.pt"
    with open(path, "wb") as stream:  # its tensor sizes live in the pickle and are allocated before any check
        checkpoint_module.pickle.dump({"format": "octfluid-checkpoint"}, stream)
    with pytest.raises(CheckpointError, match=r"^old.pt: not a readable checkpoint \(not the zip archive"):
        load_model(path)


@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda p: checkpoint_with(p, GIGANTIC_CONFIG), "43,556,364,290 parameters"),
        (lambda p: checkpoint_with(p, {"num_heads": 3}), "must divide"),
        (lambda p: checkpoint_with(p, state_change=_poison(float("nan"))), "NaN"),
        (lambda p: checkpoint_with(p, state_change=_retype(torch.complex64)), "complex64"),
    ],
    ids=["gigantic", "heads", "nan", "complex"],
)
def test_the_command_line_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys, make, phrase):
    import numpy as np

    from napari_octfluid.cli import main
    from napari_octfluid.io import write_tiff

    scan = write_tiff(tmp_path / "scan.tif", np.zeros((1, 64, 64), np.uint8), kind="image")
    weights = make(tmp_path / "odd.pt")
    assert main(["predict", str(scan), "-o", str(tmp_path / "mask.tif"), "--weights", str(weights)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and phrase in err, err
