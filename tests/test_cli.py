"""The octfluid command: subcommands, real figures, and one clear line on stderr for bad input."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_octfluid import __version__
from napari_octfluid._sample_data import SAMPLE_MASK, SAMPLE_SCAN
from napari_octfluid.cli import main
from napari_octfluid.io import read_volume, write_tiff
from napari_octfluid.training.replay import REPLAY_CROPS

OCTFLUID = str(Path(sys.executable).with_name("octfluid"))  # the console script installed beside this Python
# a training run of seconds: what the commands do around training, not what it learns
QUICK_TRAINING = {"model": "tiny", "epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "device": "cpu"}


def _tiny_pair(folder):
    """A scan of two 64 x 64 B-scans and its labels, with a block of fluid: img.tif and lab.tif in ``folder``."""
    from napari_octfluid.io import write_tiff

    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[:, 20:40, 10:30] = 1
    return (write_tiff(folder / "img.tif", images, kind="image"), write_tiff(folder / "lab.tif", labels, kind="labels"))


def test_console_script_lists_subcommands_and_version():
    helped = subprocess.run([OCTFLUID, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("predict", "train", "evaluate", "quantify", "info", "view"):
        assert command in helped
    versioned = subprocess.run([OCTFLUID, "--version"], capture_output=True, text=True, check=True).stdout
    assert versioned.strip() == f"octfluid {__version__}"


def test_info_on_the_sample(capsys):
    assert main(["info", str(SAMPLE_SCAN)]) == 0
    out = capsys.readouterr().out
    assert "11 B-scans x 496 x 768 (uint8)" in out
    assert "unknown, unknown, unknown" in out


def test_quantify_with_given_spacing_matches_the_mask(capsys, tmp_path):
    """--spacing takes micrometres (the widget's unit too): 120 3.9 11.8 um."""
    mask = read_volume(SAMPLE_MASK).data
    assert main(["quantify", str(SAMPLE_MASK), "--spacing", "120", "4", "12", "--csv", str(tmp_path / "q.csv")]) == 0
    out = capsys.readouterr().out
    expected = int(np.count_nonzero(mask)) * 0.12 * 0.004 * 0.012
    assert f"{expected:.5f} mm^3" in out
    lines = (tmp_path / "q.csv").read_text().splitlines()
    block = [line for line in lines if line.startswith("# ")]
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    assert "# spacing (B-scan, depth, width): 120, 4, 12 um" in block
    assert "# spacing source: entered by the user" in block
    assert f"# labels: {SAMPLE_MASK.resolve()}" in block
    assert any(line.startswith("# octfluid version: ") for line in block)
    assert len([r for r in rows if r[0] == "fluid" and r[1].isdigit()]) == 11
    assert ["fluid", "all", str(int(np.count_nonzero(mask))), "pixels"] in rows


def test_quantify_etdrs_sectors_add_up_to_the_volume(capsys, tmp_path):
    assert (
        main(
            [
                "quantify",
                str(SAMPLE_MASK),
                "--spacing",
                "120",
                "4",
                "12",
                "--etdrs",
                "--fovea",
                "5",
                "380",
                "--laterality",
                "OS",
                "--csv",
                str(tmp_path / "q.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "around the fovea at B-scan 5.0, A-scan 380.0 (given); eye OS" in out
    lines = (tmp_path / "q.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    sectors = [float(r[2]) for r in rows if r[0].startswith("ETDRS ") and r[3] == "nL"]
    [volume] = [float(r[2]) for r in rows if r[0] == "fluid volume" and r[3] == "nL"]
    assert len(sectors) == 10 and sum(sectors) == pytest.approx(volume, rel=1e-4)
    # the sample's 11 B-scans 120 um apart span 1.3 mm of the 6 mm grid: each sector says how much of it was scanned
    scanned = {r[0]: float(r[2]) for r in rows if r[0].endswith(" scanned") and r[3] == "%"}
    assert (
        len(scanned) == 9 and scanned["ETDRS central scanned"] == 100 and scanned["ETDRS outer superior scanned"] == 0
    )
    assert "outer superior   0.00000 mm^3 = 0.00 nL (only 0 % scanned)" in out
    assert "central" in out and "central          " in out and "(only" not in out.split("central")[1].split("\n")[0]
    assert "# fovea: B-scan 5.0, A-scan 380.0 (given)" in lines and "# eye: OS" in lines


def test_quantify_without_spacing_says_so(capsys):
    assert main(["quantify", str(SAMPLE_MASK)]) == 0
    assert "spacing unknown" in capsys.readouterr().out


def test_quantify_refuses_an_image_as_labels(capsys):
    assert main(["quantify", str(SAMPLE_SCAN)]) == 1
    assert "not labels" in capsys.readouterr().err


@pytest.mark.parametrize("argv_tail", [["info"], ["predict", "-o", "out.tif"], ["quantify"]])
def test_bad_file_gives_one_line_and_nonzero_exit(tmp_path, argv_tail):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + bytes(50))
    result = subprocess.run(
        [sys.executable, "-m", "napari_octfluid.cli", argv_tail[0], str(bad), *argv_tail[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "broken.tif" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_without_weights_says_none_are_installed(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("napari_octfluid.weights.default_weights_path", lambda: None)  # an install without them
    assert main(["predict", str(SAMPLE_SCAN), "-o", str(tmp_path / "m.tif")]) == 1
    assert "No trained weights are installed" in capsys.readouterr().err
    assert not (tmp_path / "m.tif").exists()


def test_headless_demo_writes_its_results(tmp_path, capsys, monkeypatch, tiny_checkpoint):
    monkeypatch.setattr("napari_octfluid.weights.default_weights_path", lambda: tiny_checkpoint)
    assert main(["demo", "--out", str(tmp_path / "results")]) == 0
    written = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert written == [
        "sample_bscan05_expert_fluid.png",
        "sample_bscan05_predicted_fluid.png",
        "sample_expert_fluid.csv",
        "sample_predicted_fluid.csv",
        "sample_predicted_fluid.tif",
    ]
    assert str(tmp_path / "results") in capsys.readouterr().out


def test_view_without_a_screen_falls_back_to_headless(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "xcb"}  # no DISPLAY
    result = subprocess.run(
        [sys.executable, "-m", "napari_octfluid.cli", "view"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("No screen available for napari")
    assert (tmp_path / "octfluid-results" / "sample_expert_fluid.csv").exists()


def test_view_of_a_scan_without_a_screen_says_how_to_segment_it_instead_of_a_demo_of_the_sample(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "xcb"}  # no DISPLAY
    result = subprocess.run(
        [sys.executable, "-m", "napari_octfluid.cli", "view", str(SAMPLE_SCAN)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "no screen available" in result.stderr and f"octfluid predict {SAMPLE_SCAN} -o MASK.tif" in result.stderr
    assert not (tmp_path / "octfluid-results").exists()


@pytest.mark.parametrize("scan", ["duke_dme/Subject_03_images.tif", "umn_dme/Subject_04_images.tif"])
def test_predict_on_a_real_scan_writes_a_mask_of_its_shape(shared_data, tiny_checkpoint, tmp_path, scan, capsys):
    source = read_volume(shared_data / scan)
    out, prob = tmp_path / "mask.tif", tmp_path / "prob.tif"
    assert (
        main(
            [
                "predict",
                str(shared_data / scan),
                "-o",
                str(out),
                "--weights",
                str(tiny_checkpoint),
                "--device",
                "cpu",
                "--batch-size",
                "3",
                "--probabilities",
                str(prob),
            ]
        )
        == 0
    )
    import tifffile

    mask = tifffile.imread(out)
    assert mask.shape == source.data.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    probability = tifffile.imread(prob)
    assert probability.shape == source.data.shape and probability.dtype == np.float32
    assert "wrote" in capsys.readouterr().out


def test_predict_on_a_single_bscan_writes_a_2d_mask(vendor_samples, tiny_checkpoint, tmp_path):
    out = tmp_path / "line.tif"
    assert (
        main(
            [
                "predict",
                str(vendor_samples / "heyex_vol" / "octolyzer_Linescan_1.vol"),
                "-o",
                str(out),
                "--weights",
                str(tiny_checkpoint),
            ]
        )
        == 0
    )
    written = read_volume(out)
    assert written.source_ndim == 2 and written.data.shape == (1, 496, 768)
    assert written.spacing_mm[1:] == pytest.approx((0.00387, 0.01182), rel=1e-3)  # the scan's spacing travels


@pytest.mark.parametrize("weights_content, phrase", [(b"not a checkpoint", "not a"), (b"", "not a readable")])
def test_predict_with_a_bad_checkpoint_gives_one_line(tmp_path, weights_content, phrase):
    weights = tmp_path / "w.pt"
    weights.write_bytes(weights_content)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_octfluid.cli",
            "predict",
            str(SAMPLE_SCAN),
            "-o",
            str(tmp_path / "m.tif"),
            "--weights",
            str(weights),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and phrase in result.stderr
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize(
    "values, outcome", [("seven", "counted as fluid"), ("nan", "not whole numbers"), ("negative", "outside 0..255")]
)
def test_train_checks_the_label_values(tmp_path, capsys, train_argv, values, outcome):
    from napari_octfluid.io import write_tiff

    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    labels = np.zeros((2, 64, 64), np.float32)
    labels[:, 10:20, 10:20] = {"seven": 7, "nan": np.nan, "negative": -1}[values]
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", labels if values != "seven" else labels.astype(np.uint8), kind="labels")
    before = (tmp_path / "lab.tif").read_bytes()
    code = main(train_argv(tmp_path / "img.tif", tmp_path / "lab.tif", **QUICK_TRAINING, out=tmp_path / "run"))
    err = capsys.readouterr().err
    assert outcome in err
    assert code == (0 if values == "seven" else 1)
    assert (tmp_path / "lab.tif").read_bytes() == before  # the user's file is untouched


@pytest.mark.skipif(not REPLAY_CROPS.is_file(), reason="no replay crops shipped in this checkout")
def test_train_with_replay_mixes_in_the_shipped_crops(tmp_path, capsys, train_argv):
    from napari_octfluid.io import write_tiff

    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", np.zeros((2, 64, 64), np.uint8), kind="labels")  # a user erased all fluid
    options = {**QUICK_TRAINING, "batch_size": 2, "out": tmp_path / "run"}
    command = train_argv(tmp_path / "img.tif", tmp_path / "lab.tif", **options)
    assert main(command) == 1 and "would learn to find no fluid" in capsys.readouterr().err
    assert main(command + ["--replay"]) == 0  # the replayed crops hold fluid, so this is a sound fine-tune
    assert (tmp_path / "run" / "best.pt").is_file()


def test_fine_tuning_the_decoder_keeps_the_encoder_the_threshold_and_the_share_asked_for(
    tmp_path, tiny_checkpoint, train_argv
):
    import torch

    from napari_octfluid.model import load_model, save_checkpoint

    start, _ = load_model(tiny_checkpoint)
    start.decision_threshold = 0.9  # as calibrated weights carry
    init = save_checkpoint(tmp_path / "start.pt", start)
    options = {"init": init, "trainable": "decoder", "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "lr": 0.01}
    command = train_argv(*_tiny_pair(tmp_path), **options)
    assert main(command + ["--change-kept", "1", "--out", str(tmp_path / "all")]) == 0
    assert main(command + ["--change-kept", "0.5", "--out", str(tmp_path / "half")]) == 0
    tuned, payload = load_model(tmp_path / "all" / "best.pt")
    half, half_payload = load_model(tmp_path / "half" / "best.pt")
    assert payload["train_config"]["trainable"] == "decoder" and half_payload["train_config"]["change_kept"] == 0.5
    assert torch.equal(start.encoder[0][0].weight, tuned.encoder[0][0].weight)
    assert not torch.equal(start.head.weight, tuned.head.weight)
    torch.testing.assert_close(half.head.weight, (start.head.weight + tuned.head.weight) / 2)
    assert tuned.decision_threshold == half.decision_threshold == 0.9  # not chosen again on two B-scans


@pytest.mark.parametrize("share", ["0", "1.5", "half"])
def test_a_share_of_change_outside_0_to_1_is_refused_before_training(tmp_path, capsys, share):
    with pytest.raises(SystemExit):
        main(
            ["train", "--images", "x.tif", "--labels", "y.tif", "--change-kept", share, "--out", str(tmp_path / "run")]
        )
    assert "--change-kept" in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("strength", ["-1", "nan", "strong"])
def test_a_pull_to_the_start_below_0_is_refused_before_training(tmp_path, capsys, strength):
    with pytest.raises(SystemExit):
        main(["train", "--images", "x.tif", "--labels", "y.tif", "--start-pull", strength, "--out", str(tmp_path)])
    assert "--start-pull" in capsys.readouterr().err


def test_command_line_settings_override_the_recipe_and_the_noise_ablation_turns_noise_off():
    import argparse

    from napari_octfluid.cli._common import override
    from napari_octfluid.training.engine import TrainConfig

    config = TrainConfig()
    # crossval offers no --trainable: what a command lacks keeps the recipe's value
    override(config, argparse.Namespace(loss=None, epochs=3, lr=0.01, no_noise_augmentation=True))
    assert (config.epochs, config.learning_rate, config.loss, config.trainable) == (3, 0.01, "composite", "all")
    assert config.augment.noise_probability == 0.0 and config.augment.flip  # only the noise is gone
    assert TrainConfig().augment.noise_probability > 0


def test_fine_tuning_from_the_command_line_uses_the_widgets_preset(tmp_path, tiny_checkpoint, train_argv):
    """octfluid train --init and the Fine-tune widget share one preset (training/finetune.py), so the command line
    reproduces what the widget does: decoder only, half of the change kept, BatchNorm frozen, lr 1e-4, replay."""
    from napari_octfluid.model import load_model
    from napari_octfluid.training.finetune import finetune_config

    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 1, "out": tmp_path / "run", "no_adapt": True}
    assert main(train_argv(*_tiny_pair(tmp_path), **options)) == 0
    _, payload = load_model(tmp_path / "run" / "best.pt")
    preset = finetune_config((64, 64), epochs=1, steps_per_epoch=1).to_dict()
    assert payload["train_config"] == preset
    assert (preset["trainable"], preset["change_kept"], preset["learning_rate"], preset["freeze_batchnorm"]) == (
        "decoder",
        0.5,
        1e-4,
        True,
    )


@pytest.mark.parametrize("explicit", [{}, {"trainable": "decoder"}, {"start_pull": 300.0}])
def test_fine_tuning_adapts_as_the_widget_does_keeping_what_it_is_told(
    tmp_path, tiny_checkpoint, train_argv, capsys, explicit
):
    """An untrained starting model disagrees with the labels: by default the command line adapts as the widget
    does (the whole network, longer, all of the change kept) and says why; a setting given on the command line
    (here --epochs, and --trainable) stays as given, as a field changed in the widget does."""
    from napari_octfluid.model import load_model
    from napari_octfluid.training.finetune import WHOLE_NETWORK, finetune_config

    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 1, "out": tmp_path / "run", **explicit}
    assert main(train_argv(*_tiny_pair(tmp_path), **options)) == 0
    _, payload = load_model(tmp_path / "run" / "best.pt")
    expected = finetune_config((64, 64), **{**WHOLE_NETWORK, "epochs": 1, "steps_per_epoch": 1, **explicit})
    assert payload["train_config"] == expected.to_dict()
    said = capsys.readouterr().err
    assert "fine-tuning goes further" in said
    kept_as_set = said.split("(your ", 1)[1].split(" kept as set", 1)[0].split(", ")  # --epochs is always given
    assert "epochs" in kept_as_set and all(name in kept_as_set for name in explicit)
    pulled = f"held near the starting weights (pull {WHOLE_NETWORK['start_pull']:g})"
    assert (pulled in said) == ("start_pull" not in explicit)


@pytest.mark.parametrize("adapt", [True, False])
def test_fine_tuning_a_scan_without_a_spacing_fits_its_axial_pixel_size_and_keeps_it(
    tmp_path, tiny_checkpoint, train_argv, capsys, monkeypatch, adapt
):
    """As the widget does (training/axial_fit.py): the labels' file gives no spacing, the starting model agrees far
    better with them at half its axial pixel size (patched), so the new model is trained there and keeps that size
    in its checkpoint, and the command says so; with --no-adapt nothing is fitted."""
    from napari_octfluid.axial import model_axial_spacing
    from napari_octfluid.metrics import Confusion
    from napari_octfluid.model import load_model
    from napari_octfluid.training import finetune

    half = round(model_axial_spacing(load_model(tiny_checkpoint)[0]) / 2, 7)

    def agreement_counts(model, images, labels, chosen, device="auto", axial_spacing_mm=None):
        yield from ()
        hits = 900.0 if axial_spacing_mm == half else 500.0  # Dice 0.9 there, 0.5 elsewhere, of 1000 pixels
        return Confusion(np.float64(hits), np.float64(1000 - hits), np.float64(1000 - hits))

    monkeypatch.setattr(finetune, "agreement_counts", agreement_counts)
    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 1, "out": tmp_path / "run"}
    assert main(train_argv(*_tiny_pair(tmp_path), **options, **({} if adapt else {"no_adapt": True}))) == 0
    model, _ = load_model(tmp_path / "run" / "best.pt")
    assert model.fitted_axial_spacing_mm == (pytest.approx(half) if adapt else None)
    said = capsys.readouterr().err
    assert ("um per row" in said) == adapt
    # the fit did the adapting: the preset trains at that size, though the model as it is agreed to Dice 0.5 only
    assert ("fine-tuning as set, at that size" in said) == adapt and "decoder learns" in said
    assert load_model(tiny_checkpoint)[0].fitted_axial_spacing_mm is None  # --init's file as it was


def test_a_name_that_cannot_be_kept_is_refused_before_training(tmp_path, tiny_checkpoint, train_argv, capsys):
    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 1, "out": tmp_path / "run", "name": "../x"}
    assert main(train_argv(*_tiny_pair(tmp_path), **options)) != 0
    assert "cannot name a model" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_fine_tuned_model_is_kept_by_name_for_a_device(tmp_path, tiny_checkpoint, train_argv, monkeypatch):
    from napari_octfluid.model_library import MODELS_ENV, kept_models

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 1, "out": tmp_path / "run"}
    options.update(name="Clinic A Cirrus", for_device="Carl Zeiss Meditec Cirrus HD-OCT 5000")
    assert main(train_argv(*_tiny_pair(tmp_path), **options)) == 0
    [kept] = kept_models()
    assert (kept.name, kept.device) == ("Clinic A Cirrus", "Carl Zeiss Meditec Cirrus HD-OCT 5000")
    assert kept.path == tmp_path / "models" / "Clinic A Cirrus.pt"


# --- issue 21: nothing the user made is lost; one line, never a traceback


def test_a_new_training_run_never_replaces_a_finished_one(tmp_path, capsys, train_argv):
    """Issue 21, data loss 3: a second run into the same --out replaced the finished run's calibrated best.pt."""
    from napari_octfluid.model import load_model

    command = train_argv(*_tiny_pair(tmp_path), **QUICK_TRAINING, out=tmp_path / "run")
    assert main(command) == 0
    finished = (tmp_path / "run" / "best.pt").read_bytes()
    model, payload = load_model(tmp_path / "run" / "best.pt")
    assert payload["finished"] is True and model.decision_threshold is not None  # calibrated, then marked
    assert load_model(tmp_path / "run" / "last.pt")[1]["finished"] is True
    capsys.readouterr()
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a training run" in err and "--overwrite" in err
    assert (tmp_path / "run" / "best.pt").read_bytes() == finished
    assert main(command + ["--overwrite"]) == 0  # asked for explicitly


def test_a_run_stopped_before_its_calibration_leaves_checkpoints_that_say_so(tmp_path, capsys, monkeypatch, train_argv):
    """Issue 21, data loss 3: a killed run left an uncalibrated best.pt that looked final."""
    from napari_octfluid.model import load_model

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt  # what a stop during calibration looks like to the command

    monkeypatch.setattr("napari_octfluid.training.calibrate.calibrate_checkpoint", killed)
    images, labels = _tiny_pair(tmp_path)
    run = tmp_path / "run"
    assert main(train_argv(images, labels, **QUICK_TRAINING, out=run)) == 130
    for name in ("best.pt", "last.pt"):
        model, payload = load_model(run / name)
        assert payload["finished"] is False and model.decision_threshold is None
    capsys.readouterr()
    assert main(["predict", str(images), "-o", str(tmp_path / "m.tif"), "--weights", str(run / "best.pt")]) == 0
    assert "did not finish" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--images", "i.tif", "--labels", "l.tif", "--batch-size", "0"], "--batch-size"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--epochs", "0"], "--epochs"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--steps-per-epoch", "0"], "--steps-per-epoch"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--lr", "nan"], "--lr"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--lr", "-1"], "--lr"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--lr", "inf"], "--lr"),
        (["train", "--images", "i.tif", "--labels", "l.tif", "--lr", "0"], "--lr"),
        (["quantify", "m.tif", "--spacing", "-120", "3.9", "11.8"], "--spacing"),
        (["quantify", "m.tif", "--spacing", "120", "0", "11.8"], "--spacing"),
        (["quantify", "m.tif", "--spacing", "120", "nan", "11.8"], "--spacing"),
        (["quantify", "m.tif", "--spacing", "120", "3.9", "inf"], "--spacing"),
        (["quantify", "m.tif", "--spacing", "0.12", "0.0039", "0.0118"], "--spacing"),  # millimetres typed as um
        (["quantify", "m.tif", "--fovea", "nan", "3"], "--fovea"),
        (["evaluate", "--noise-sigma", "-1"], "--noise-sigma"),
        (["evaluate", "--noise-sigma", "nan"], "--noise-sigma"),
        (["crossval", "--recipe", "r.toml", "--folds", "1"], "--folds"),
        (["crossval", "--recipe", "r.toml", "--threads", "0"], "--threads"),
        (["crossval", "--recipe", "r.toml", "--lr", "nan"], "--lr"),
        (["crossval", "--recipe", "r.toml", "--noise-sigma", "-5"], "--noise-sigma"),
        (["predict", "s.tif", "-o", "m.tif", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_numeric_options_are_checked_before_any_work(capsys, argv, option):
    """Issue 21: --lr nan trained into NaN weights, quantify --spacing -0.12 printed a negative volume."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_quantify_says_the_spacing_is_in_micrometres(capsys):
    """Issue 20: micrometres given to the old millimetre option printed 302 billion nL; millimetres given now are
    refused with what to type."""
    with pytest.raises(SystemExit):
        main(["quantify", str(SAMPLE_MASK), "--spacing", "120", "0.0039", "11.8"])
    err = capsys.readouterr().err
    assert "0.0039 um is not an OCT pixel size along depth; did you mean 3.9 um (0.0039 mm)?" in err
    assert "--spacing takes micrometres, e.g. 120 3.9 11.8" in err and "nL" not in err


def test_quantify_refuses_an_impossible_spacing_stored_in_the_file(tmp_path, capsys):
    from napari_octfluid.io import write_tiff

    mask = write_tiff(tmp_path / "m.tif", read_volume(SAMPLE_MASK).data, (0.12, 3.9, 11.8), kind="labels")
    assert main(["quantify", str(mask)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.tif stores an impossible spacing" in err and "--spacing" in err


@pytest.mark.parametrize("option", ["-o", "--probabilities"])
@pytest.mark.parametrize(
    "problem, phrase",
    [
        ("missing folder", "does not exist"),
        ("folder", "is a folder"),
        ("read-only", "is read-only"),
        ("png", "give a name ending in .tif"),
    ],
)
def test_predict_output_problems_are_found_before_the_prediction(
    tmp_path, capsys, monkeypatch, option, problem, phrase
):
    """Issue 21: a missing folder, a read-only one or a folder given as -o surfaced only after the prediction."""
    import napari_octfluid.io
    import napari_octfluid.outputs

    def no_work(*_args, **_kwargs):
        raise AssertionError("the scan was read before the outputs were checked")

    monkeypatch.setattr(napari_octfluid.io, "read_volume", no_work)
    target = {
        "missing folder": tmp_path / "nowhere" / "m.tif",
        "folder": tmp_path,
        "png": tmp_path / "m.png",
        "read-only": tmp_path / "ro" / "m.tif",
    }[problem]
    (tmp_path / "ro").mkdir()
    # root writes anywhere whatever the mode bits say, so the folder is made read-only where octfluid asks
    real_access = os.access
    monkeypatch.setattr(
        napari_octfluid.outputs.os,
        "access",
        lambda path, mode: False if Path(path) == tmp_path / "ro" else real_access(path, mode),
    )
    other = ["-o", str(tmp_path / "fine.tif")] if option == "--probabilities" else []
    assert main(["predict", str(SAMPLE_SCAN), *other, option, str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and phrase in err and option in err


@pytest.mark.parametrize(
    "code, phrase",
    [(errno.ENOSPC, "no space left on the disk"), (errno.EROFS, "read-only disk"), (errno.EACCES, "permission denied")],
)
def test_a_failing_disk_during_predict_gives_one_line_and_no_partial_mask(
    tmp_path, capsys, monkeypatch, tiny_checkpoint, code, phrase
):
    """Issue 21: a full disk or a read-only folder while writing the mask gave a traceback."""
    import tifffile

    def failing_write(path, *_args, **_kwargs):
        Path(path).write_bytes(b"II*\x00 half a TIFF")  # some bytes reach the disk before it fails
        raise OSError(code, os.strerror(code))

    (tmp_path / "in").mkdir()
    scan, _ = _tiny_pair(tmp_path / "in")
    monkeypatch.setattr(tifffile, "imwrite", failing_write)
    out = tmp_path / "out" / "mask.tif"
    out.parent.mkdir()
    assert main(["predict", str(scan), "-o", str(out), "--weights", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the progress lines of the prediction
    assert last.startswith("octfluid predict: error:") and phrase in last and "Traceback" not in err
    assert str(out) in last and "octfluid.tmp" not in err  # the user's file is named, not the temporary one
    assert list(out.parent.iterdir()) == []  # neither a mask nor a temporary file


def test_a_full_disk_during_quantify_csv_keeps_the_previous_table(tmp_path, capsys, monkeypatch, full_disk_csv_writer):
    """Issue 21: the CSV was not written atomically (a full disk left a 0-byte file) and gave a traceback."""
    import napari_octfluid.quantify

    table = tmp_path / "q.csv"
    table.write_text("the previous table\n")

    monkeypatch.setattr(napari_octfluid.quantify.csv, "writer", full_disk_csv_writer)
    assert main(["quantify", str(SAMPLE_MASK), "--csv", str(table), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the disk" in err and "q.csv" in err
    assert table.read_text() == "the previous table\n" and sorted(p.name for p in tmp_path.iterdir()) == ["q.csv"]


def test_a_full_disk_during_training_gives_one_line(tmp_path, capsys, monkeypatch, train_argv):
    import torch

    images, labels = _tiny_pair(tmp_path)

    def full_disk(_payload, stream, *_args, **_kwargs):  # save_checkpoint hands torch an open file
        stream.write(b"PK half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    run = tmp_path / "run"
    assert main(train_argv(images, labels, **QUICK_TRAINING, out=run)) == 1
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # on a line of its own, after the progress line
    assert last.startswith("octfluid train: error: no space left on the disk") and "Traceback" not in err
    assert list(run.iterdir()) == []  # no half checkpoint, no temporary file


def test_evaluate_refuses_labels_with_no_annotated_pixel(tmp_path, capsys, tiny_checkpoint):
    """Issue 21, silent nonsense: labels all 'not annotated' (255) were reported as Dice 1.0000."""
    from napari_octfluid.io import write_tiff

    images, _ = _tiny_pair(tmp_path)
    unknown = write_tiff(tmp_path / "unknown.tif", np.full((2, 64, 64), 255, np.uint8), kind="labels")
    assert main(["evaluate", "--images", str(images), "--labels", str(unknown), "--weights", str(tiny_checkpoint)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "unknown.tif: no annotated pixels" in captured.err
    assert "1.0000" not in captured.out


def test_evaluate_csv_is_checked_before_the_evaluation(tmp_path, capsys, tiny_checkpoint):
    images, labels = _tiny_pair(tmp_path)
    assert (
        main(
            [
                "evaluate",
                "--images",
                str(images),
                "--labels",
                str(labels),
                "--weights",
                str(tiny_checkpoint),
                "--csv",
                str(labels),
            ]
        )
        == 1
    )
    assert "--csv" in capsys.readouterr().err and read_volume(labels).is_labels


@pytest.mark.parametrize(
    "argv",
    [
        ["crossval", "--recipe", "r.toml", "--out", "{file}"],
        ["crossval", "--recipe", "r.toml", "--csv", "{folder}"],
        ["train", "--images", "i.tif", "--labels", "l.tif", "--out", "{file}"],
        ["demo", "--out", "{file}"],
        ["quantify", "{mask}", "--csv", "{mask}"],
    ],
)
def test_every_command_checks_its_outputs_first(tmp_path, capsys, argv):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("kept")
    mask = tmp_path / "m.tif"
    mask.write_bytes(SAMPLE_MASK.read_bytes())
    assert main([a.format(file=a_file, folder=tmp_path, mask=mask) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("a folder" in err or "is also an input" in err), err
    assert a_file.read_text() == "kept" and mask.read_bytes() == SAMPLE_MASK.read_bytes()


def test_crossval_never_trains_again_over_finished_folds(tmp_path, capsys):
    (tmp_path / "cv" / "fold_2").mkdir(parents=True)
    (tmp_path / "cv" / "fold_2" / "final.pt").write_bytes(b"a finished fold")
    assert main(["crossval", "--recipe", "r.toml", "--folds", "2", "--out", str(tmp_path / "cv")]) == 1
    err = capsys.readouterr().err
    assert "already holds finished folds (2)" in err and "--reuse" in err
    assert (
        main(["crossval", "--recipe", "r.toml", "--folds", "2", "--only-folds", "3", "--out", str(tmp_path / "cv")])
        == 1
    )
    assert "numbered 1 to 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "emit, phrase",
    [
        ("pillow", "decompression bomb DOS attack. (DecompressionBombWarning)"),
        ("numpy", "overflow encountered"),
    ],
)
def test_library_warnings_become_one_line_notices(capsys, monkeypatch, emit, phrase):
    import warnings

    from napari_octfluid.cli import info

    def run_with_a_warning(_args):
        if emit == "pillow":
            from PIL import Image

            warnings.warn(
                "Image size (2000 pixels) exceeds limit of 1000 pixels, could be decompression bomb DOS attack.",
                Image.DecompressionBombWarning,
                stacklevel=2,
            )
        else:
            np.array([60000], np.float16) * np.float16(10)  # overflow to inf
        return 0

    monkeypatch.setattr(info, "run", run_with_a_warning)
    assert main(["info", "x.tif"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("octfluid info: notice: ") and phrase in lines[0], lines


def test_warnings_made_errors_still_stop_the_command(monkeypatch):
    import warnings

    from napari_octfluid.cli import info

    monkeypatch.setattr(info, "run", lambda _args: warnings.warn("a real problem", RuntimeWarning, stacklevel=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            main(["info", "x.tif"])


def test_memory_limit_option_refuses_a_scan_larger_than_it(tmp_path, capsys):
    """--memory-limit sets the one memory budget (napari_octfluid.memory): the sample (11 x 496 x 768 bytes) is
    refused under 1 MB before it is read, with one line that says what to do."""
    from napari_octfluid import memory

    try:
        assert main(["--memory-limit", "1MB", "info", str(SAMPLE_SCAN)]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "octfluid info: error:" in error and "OCTFLUID_MEMORY_LIMIT" in error
        assert main(["--memory-limit", "1GB", "info", str(SAMPLE_SCAN)]) == 0
    finally:
        memory.set_memory_limit(None)
    with pytest.raises(SystemExit):
        main(["--memory-limit", "lots", "info", str(SAMPLE_SCAN)])
    assert "--memory-limit" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "train"])
def test_a_broken_torchrun_environment_is_one_line(command, tmp_path, capsys, monkeypatch):
    """RANK/WORLD_SIZE/LOCAL_RANK that are not whole numbers: one line naming them, no traceback."""
    monkeypatch.setenv("RANK", "x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    argv = {
        "predict": ["predict", str(SAMPLE_SCAN), "-o", str(tmp_path / "m.tif")],
        "train": ["train", "--images", str(SAMPLE_SCAN), "--labels", str(SAMPLE_MASK), "--out", str(tmp_path / "r")],
    }
    assert main(argv[command]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers" in err


def _tiny_recipe(tmp_path, config_name):
    """A recipe as load_recipe returns one, of the tiny pair's B-scans, for a model configuration."""
    from napari_octfluid.cli._common import load_subjects
    from napari_octfluid.model import MODEL_CONFIGS
    from napari_octfluid.training.data import BscanSet
    from napari_octfluid.training.engine import TrainConfig
    from napari_octfluid.training.recipe import Recipe

    images, labels = _tiny_pair(tmp_path)
    data = BscanSet.from_subjects(load_subjects([images], [labels]))
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), learning_rate=1e-3)
    return Recipe(MODEL_CONFIGS[config_name], config, data, None, "")


def test_a_recipe_with_init_trains_from_the_given_weights(tmp_path, tiny_checkpoint, monkeypatch):
    """--recipe with --init runs the recipe's training from the given weights (e.g. the shipped ones, made robust
    with domain randomisation), not from new random weights: --init is no longer silently ignored."""
    import torch

    from napari_octfluid.model import load_model
    from napari_octfluid.training import recipe

    monkeypatch.setattr(recipe, "load_recipe", lambda path: _tiny_recipe(tmp_path, "tiny"))
    start, _ = load_model(tiny_checkpoint)
    argv = ["train", "--recipe", "r.toml", "--lr", "1e-9", "--threads", "1"]
    assert main([*argv, "--init", str(tiny_checkpoint), "--out", str(tmp_path / "from")]) == 0
    assert main([*argv, "--out", str(tmp_path / "new")]) == 0
    continued, _ = load_model(tmp_path / "from" / "last.pt")
    fresh, _ = load_model(tmp_path / "new" / "last.pt")
    # one step at a negligible learning rate: the weights are still the starting ones, and only those
    torch.testing.assert_close(continued.encoder[0][0].weight, start.encoder[0][0].weight, atol=1e-6, rtol=0)
    assert not torch.allclose(fresh.encoder[0][0].weight, start.encoder[0][0].weight, atol=1e-3)


def test_a_recipe_with_init_of_another_configuration_is_refused(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    from napari_octfluid.training import recipe

    monkeypatch.setattr(recipe, "load_recipe", lambda path: _tiny_recipe(tmp_path, "paper"))
    argv = ["train", "--recipe", "r.toml", "--init", str(tiny_checkpoint), "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    assert "another configuration" in capsys.readouterr().err and not (tmp_path / "run" / "best.pt").exists()


def test_crossval_refuses_an_unknown_shift_before_any_work(tmp_path, capsys):
    assert main(["crossval", "--recipe", "r.toml", "--shift", "fog", "--out", str(tmp_path / "cv")]) == 1
    err = capsys.readouterr().err
    assert "no shift named fog" in err and "vendor_unaveraged" in err
    assert not (tmp_path / "cv").exists()


def test_quantify_refuses_a_fovea_off_the_scan_and_a_scan_of_another_shape(capsys, tmp_path):
    """A fovea outside the scan put all the fluid "outside grid"; a --scan of another shape placed the grid by
    another eye's fovea. Both used to pass with exit 0."""
    argv = ["quantify", str(SAMPLE_MASK), "--spacing", "120", "4", "12", "--etdrs"]
    assert main([*argv, "--fovea", "50", "5000"]) == 1
    assert "--fovea 50 5000 lies outside the scan (11 B-scans, 768 A-scans)" in capsys.readouterr().err
    other = write_tiff(
        tmp_path / "other.tif", np.full((3, 64, 64), 100, np.uint8) + np.eye(64, dtype=np.uint8), kind="image"
    )
    assert main([*argv, "--scan", str(other)]) == 1
    assert "has shape (3, 64, 64) but" in capsys.readouterr().err
    assert main(["quantify", str(SAMPLE_MASK), "--fovea", "5", "380"]) == 0
    assert "add --etdrs" in capsys.readouterr().err


def test_quantify_names_a_black_and_white_mask_for_what_it_is(capsys, tmp_path):
    """0/255 is how ImageJ and OpenCV save a binary mask; octfluid reads 255 as "not annotated"."""
    mask = np.zeros((2, 64, 64), np.uint8)
    mask[:, 20:30, 20:30] = 255
    path = write_tiff(tmp_path / "m255.tif", mask, kind="image")
    assert main(["quantify", str(path)]) == 1
    err = capsys.readouterr().err
    assert "holds only 0 and 255" in err and "Save the mask with 1 for fluid" in err


def test_a_predicted_mask_keeps_its_weights_for_quantifys_csv(tmp_path, tiny_checkpoint):
    """The mask of `octfluid predict -o` did not record its model, and quantify's CSV said "unknown"."""
    mask = tmp_path / "mask.tif"
    assert main(["predict", str(SAMPLE_SCAN), "-o", str(mask), "--weights", str(tiny_checkpoint)]) == 0
    assert read_volume(mask).meta["model"] == str(tiny_checkpoint)
    assert main(["quantify", str(mask), "--csv", str(tmp_path / "q.csv")]) == 0
    assert f"# model: {tiny_checkpoint}" in (tmp_path / "q.csv").read_text().splitlines()


def test_predict_with_a_folder_for_weights_says_so(tmp_path, capsys):
    assert main(["predict", str(SAMPLE_SCAN), "-o", str(tmp_path / "m.tif"), "--weights", str(tmp_path)]) == 1
    assert f"--weights {tmp_path} is a folder: give the checkpoint file" in capsys.readouterr().err
