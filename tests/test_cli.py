"""The octfluid command: subcommands, real figures, and one clear line on stderr for bad input."""

import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest

from napari_octfluid import __version__
from napari_octfluid._sample_data import SAMPLE_MASK, SAMPLE_SCAN
from napari_octfluid.cli import main
from napari_octfluid.io import read_volume
from napari_octfluid.training.replay import REPLAY_CROPS


OCTFLUID = str(Path(sys.executable).with_name("octfluid"))  # the console script installed beside this Python


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
    mask = read_volume(SAMPLE_MASK).data
    assert main(["quantify", str(SAMPLE_MASK), "--spacing", "0.12", "0.004", "0.012", "--csv",
                 str(tmp_path / "q.csv")]) == 0
    out = capsys.readouterr().out
    expected = int(np.count_nonzero(mask)) * 0.12 * 0.004 * 0.012
    assert f"{expected:.5f} mm^3" in out
    rows = (tmp_path / "q.csv").read_text().splitlines()
    assert len([r for r in rows if r[:1].isdigit()]) == 11 and rows[12].startswith("total,")


def test_quantify_etdrs_sectors_add_up_to_the_volume(capsys, tmp_path):
    assert main(["quantify", str(SAMPLE_MASK), "--spacing", "0.12", "0.004", "0.012", "--etdrs", "--fovea", "5",
                 "380", "--laterality", "OS", "--csv", str(tmp_path / "q.csv")]) == 0
    out = capsys.readouterr().out
    assert "around the fovea at B-scan 5.0, A-scan 380.0 (given); eye OS" in out
    rows = [line.split(",") for line in (tmp_path / "q.csv").read_text().splitlines()]
    sectors = [float(r[1]) for r in rows if r[0].startswith("ETDRS ")]
    [volume] = [float(r[1]) for r in rows if r[0] == "fluid volume" and r[2] == "mm3"]
    assert len(sectors) == 10 and sum(sectors) == pytest.approx(volume, rel=1e-4)


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
    result = subprocess.run([sys.executable, "-m", "napari_octfluid.cli", argv_tail[0], str(bad), *argv_tail[1:]],
                            capture_output=True, text=True, cwd=tmp_path)
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
    assert written == ["sample_bscan05_expert_fluid.png", "sample_bscan05_predicted_fluid.png",
                       "sample_expert_fluid.csv", "sample_predicted_fluid.csv", "sample_predicted_fluid.tif"]
    assert str(tmp_path / "results") in capsys.readouterr().out


def test_view_without_a_screen_falls_back_to_headless(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "xcb"}  # no DISPLAY
    result = subprocess.run([sys.executable, "-m", "napari_octfluid.cli", "view"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("No screen available for napari")
    assert (tmp_path / "octfluid-results" / "sample_expert_fluid.csv").exists()


@pytest.mark.parametrize("scan", ["duke_dme/Subject_03_images.tif", "umn_dme/Subject_04_images.tif"])
def test_predict_on_a_real_scan_writes_a_mask_of_its_shape(shared_data, tiny_checkpoint, tmp_path, scan, capsys):
    source = read_volume(shared_data / scan)
    out, prob = tmp_path / "mask.tif", tmp_path / "prob.tif"
    assert main(["predict", str(shared_data / scan), "-o", str(out), "--weights", str(tiny_checkpoint),
                 "--device", "cpu", "--batch-size", "3", "--probabilities", str(prob)]) == 0
    import tifffile

    mask = tifffile.imread(out)
    assert mask.shape == source.data.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    probability = tifffile.imread(prob)
    assert probability.shape == source.data.shape and probability.dtype == np.float32
    assert "wrote" in capsys.readouterr().out


def test_predict_on_a_single_bscan_writes_a_2d_mask(vendor_samples, tiny_checkpoint, tmp_path):
    out = tmp_path / "line.tif"
    assert main(["predict", str(vendor_samples / "heyex_vol" / "octolyzer_Linescan_1.vol"), "-o", str(out),
                 "--weights", str(tiny_checkpoint)]) == 0
    written = read_volume(out)
    assert written.source_ndim == 2 and written.data.shape == (1, 496, 768)
    assert written.spacing_mm[1:] == pytest.approx((0.00387, 0.01182), rel=1e-3)  # the scan's spacing travels


@pytest.mark.parametrize("weights_content, phrase", [(b"not a checkpoint", "not a"), (b"", "not a readable")])
def test_predict_with_a_bad_checkpoint_gives_one_line(tmp_path, weights_content, phrase):
    weights = tmp_path / "w.pt"
    weights.write_bytes(weights_content)
    result = subprocess.run([sys.executable, "-m", "napari_octfluid.cli", "predict", str(SAMPLE_SCAN), "-o",
                             str(tmp_path / "m.tif"), "--weights", str(weights)], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and phrase in result.stderr
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize("values, outcome", [("seven", "counted as fluid"), ("nan", "not whole numbers"),
                                             ("negative", "outside 0..255")])
def test_train_checks_the_label_values(tmp_path, capsys, values, outcome):
    from napari_octfluid.io import write_tiff

    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    labels = np.zeros((2, 64, 64), np.float32)
    labels[:, 10:20, 10:20] = {"seven": 7, "nan": np.nan, "negative": -1}[values]
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", labels if values != "seven" else labels.astype(np.uint8), kind="labels")
    before = (tmp_path / "lab.tif").read_bytes()
    code = main(["train", "--images", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"),
                 "--model", "tiny", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert outcome in err
    assert code == (0 if values == "seven" else 1)
    assert (tmp_path / "lab.tif").read_bytes() == before  # the user's file is untouched


@pytest.mark.skipif(not REPLAY_CROPS.is_file(), reason="no replay crops shipped in this checkout")
def test_train_with_replay_mixes_in_the_shipped_crops(tmp_path, capsys):
    from napari_octfluid.io import write_tiff

    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", np.zeros((2, 64, 64), np.uint8), kind="labels")  # a user erased all fluid
    command = ["train", "--images", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"),
               "--model", "tiny", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
               "--out", str(tmp_path / "run")]
    assert main(command) == 1 and "would learn to find no fluid" in capsys.readouterr().err
    assert main(command + ["--replay"]) == 0  # the replayed crops hold fluid, so this is a sound fine-tune
    assert (tmp_path / "run" / "best.pt").is_file()


def test_fine_tuning_the_decoder_keeps_the_encoder_the_threshold_and_the_share_asked_for(tmp_path, tiny_checkpoint):
    import torch

    from napari_octfluid.io import write_tiff
    from napari_octfluid.model import load_model, save_checkpoint

    start, _ = load_model(tiny_checkpoint)
    start.decision_threshold = 0.9  # as calibrated weights carry
    init = save_checkpoint(tmp_path / "start.pt", start)
    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64), dtype=np.uint8)
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[:, 20:40, 10:30] = 1
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", labels, kind="labels")
    command = ["train", "--images", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"),
               "--init", str(init), "--trainable", "decoder", "--epochs", "1", "--steps-per-epoch", "2",
               "--batch-size", "2", "--lr", "0.01"]
    assert main(command + ["--out", str(tmp_path / "all")]) == 0
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
        main(["train", "--images", "x.tif", "--labels", "y.tif", "--change-kept", share,
              "--out", str(tmp_path / "run")])
    assert "--change-kept" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_command_line_settings_override_the_recipe_and_the_noise_ablation_turns_noise_off():
    import argparse

    from napari_octfluid.cli import _override
    from napari_octfluid.training.engine import TrainConfig

    config = TrainConfig()
    # crossval offers no --trainable: what a command lacks keeps the recipe's value
    _override(config, argparse.Namespace(loss=None, epochs=3, lr=0.01, no_noise_augmentation=True))
    assert (config.epochs, config.learning_rate, config.loss, config.trainable) == (3, 0.01, "composite", "all")
    assert config.augment.noise_probability == 0.0 and config.augment.flip  # only the noise is gone
    assert TrainConfig().augment.noise_probability > 0
