"""The bad-input corpus (tests/bad_files.py) through every route a user takes: ``octfluid predict``,
``octfluid train`` (as images and as labels) and napari's reader. Each ends with one clear line and exit 1 (CLI)
or a notification (napari), never a traceback, and leaves the user's files as they were."""

import imageio.v3 as iio
import numpy as np
import pytest
from bad_files import BAD_CHECKPOINTS, BAD_INPUTS, ODD_BUT_VALID, UNSEGMENTABLE, fingerprint, tiff

from napari_octfluid.cli import main
from napari_octfluid.io import read_volume, write_tiff

EVERY_BAD = BAD_INPUTS + UNSEGMENTABLE
TRAIN_QUICK = ["--model", "tiny", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1"]


def _one_clear_line(err: str, phrase: str, command: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"octfluid {command}: error:"), err
    assert phrase in lines[0], err


def _good_pair(folder, shape=(2, 64, 80)):
    images = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    labels = np.zeros(shape, np.uint8)
    labels[..., 20:30, 20:40] = 1
    return (
        write_tiff(folder / "good_images.tif", images, kind="image"),
        write_tiff(folder / "good_labels.tif", labels, kind="labels"),
    )


@pytest.mark.parametrize("name, make, phrase", EVERY_BAD, ids=[b[0] for b in EVERY_BAD])
def test_predict_refuses_with_one_line_and_writes_nothing(tmp_path, capsys, name, make, phrase):
    path = make(tmp_path / name)
    before = fingerprint(path)
    out = tmp_path / "predicted_fluid.tif"
    assert main(["predict", str(path), "-o", str(out)]) == 1
    _one_clear_line(capsys.readouterr().err, phrase, "predict")
    assert not out.exists() and fingerprint(path) == before


@pytest.mark.parametrize("name, make, phrase", EVERY_BAD, ids=[b[0] for b in EVERY_BAD])
def test_train_refuses_a_bad_scan_with_one_line(tmp_path, capsys, name, make, phrase):
    path = make(tmp_path / name)
    before = fingerprint(path)
    if (name, make, phrase) in UNSEGMENTABLE:  # readable: give it labels of its own shape
        shape = read_volume(path).data.shape
        labels = write_tiff(tmp_path / "labels.tif", np.ones(shape, np.uint8), kind="labels")
    else:
        labels = _good_pair(tmp_path)[1]
    code = main(["train", "--images", str(path), "--labels", str(labels), *TRAIN_QUICK, "--out", str(tmp_path / "run")])
    assert code == 1
    _one_clear_line(capsys.readouterr().err, phrase, "train")
    assert not (tmp_path / "run").exists() and fingerprint(path) == before


@pytest.mark.parametrize("name, make, phrase", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_train_refuses_bad_labels_with_one_line(tmp_path, capsys, name, make, phrase):
    path = make(tmp_path / name)
    before = fingerprint(path)
    images = _good_pair(tmp_path)[0]
    code = main(["train", "--images", str(images), "--labels", str(path), *TRAIN_QUICK, "--out", str(tmp_path / "run")])
    assert code == 1
    _one_clear_line(capsys.readouterr().err, phrase, "train")
    assert not (tmp_path / "run").exists() and fingerprint(path) == before


@pytest.mark.parametrize("labels_shape, phrase", [((2, 64, 81), "must match"), ((3, 64, 80), "must match")])
def test_train_refuses_labels_of_another_shape(tmp_path, capsys, labels_shape, phrase):
    images, _ = _good_pair(tmp_path)
    labels = write_tiff(tmp_path / "other.tif", np.zeros(labels_shape, np.uint8), kind="labels")
    assert (
        main(["train", "--images", str(images), "--labels", str(labels), *TRAIN_QUICK, "--out", str(tmp_path / "run")])
        == 1
    )
    _one_clear_line(capsys.readouterr().err, phrase, "train")


def test_train_refuses_labels_without_any_fluid(tmp_path, capsys):
    images, _ = _good_pair(tmp_path)
    empty = write_tiff(tmp_path / "empty.tif", np.zeros((2, 64, 80), np.uint8), kind="labels")
    assert (
        main(["train", "--images", str(images), "--labels", str(empty), *TRAIN_QUICK, "--out", str(tmp_path / "run")])
        == 1
    )
    err = capsys.readouterr().err
    assert "would learn to find no fluid" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_predict_never_overwrites_the_scan(tmp_path, capsys):
    images, _ = _good_pair(tmp_path)
    before = fingerprint(images)
    assert main(["predict", str(images), "-o", str(images)]) == 1
    _one_clear_line(capsys.readouterr().err, "is also an input", "predict")
    assert fingerprint(images) == before


@pytest.mark.parametrize(
    "outputs, phrase",
    [
        (["-o", "mask.tif", "--probabilities", "{scan}"], "--probabilities {scan} is also an input"),
        (["-o", "mask.tif", "--probabilities", "mask.tif"], "-o and --probabilities both name"),
        (["-o", "mask.tif", "--probabilities", "{weights}"], "is also an input"),
        (["-o", "link.tif"], "the same file as"),
    ],
)
def test_predict_refuses_outputs_that_replace_an_input_or_each_other(
    tmp_path, capsys, monkeypatch, tiny_checkpoint, outputs, phrase
):
    """Issue 21, data loss 1: --probabilities was never checked against the scan (it overwrote it, exit 0) nor
    against -o (it replaced the mask)."""
    monkeypatch.chdir(tmp_path)
    images, _ = _good_pair(tmp_path)
    weights = tmp_path / "weights.pt"
    weights.write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "link.tif").symlink_to(images)
    before = fingerprint(images), fingerprint(weights)
    argv = [a.format(scan=images, weights=weights) for a in outputs]
    assert main(["predict", str(images), *argv, "--weights", str(weights)]) == 1
    _one_clear_line(capsys.readouterr().err, phrase.format(scan=images), "predict")
    assert (fingerprint(images), fingerprint(weights)) == before and not (tmp_path / "mask.tif").exists()


@pytest.mark.parametrize("inside", ["mask.tif", "sub/mask.tif"])
def test_predict_never_writes_into_the_folder_of_bscans_it_reads(tmp_path, capsys, tiny_checkpoint, inside):
    """Issue 21, data loss 2: a mask written among the B-scans made the folder unreadable."""
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index in range(2):
        iio.imwrite(folder / f"b{index}.png", np.random.default_rng(index).integers(0, 255, (64, 80), np.uint8))
    before = fingerprint(folder)
    assert main(["predict", str(folder), "-o", str(folder / inside), "--weights", str(tiny_checkpoint)]) == 1
    _one_clear_line(capsys.readouterr().err, "is inside the input folder", "predict")
    assert fingerprint(folder) == before and read_volume(folder).data.shape == (2, 64, 80)


@pytest.mark.parametrize("name, make, phrase", BAD_CHECKPOINTS, ids=[b[0] for b in BAD_CHECKPOINTS])
def test_a_checkpoint_whose_threshold_is_no_probability_gives_one_line(tmp_path, capsys, name, make, phrase):
    """Issue 21, tracebacks: a string or a list threshold failed deep inside prediction; NaN found no fluid."""
    weights = make(tmp_path / name)
    images, _ = _good_pair(tmp_path)
    out = tmp_path / "mask.tif"
    assert main(["predict", str(images), "-o", str(out), "--weights", str(weights)]) == 1
    err = capsys.readouterr().err
    _one_clear_line(err, phrase, "predict")
    assert name in err and not out.exists()


@pytest.mark.parametrize("name, make", ODD_BUT_VALID, ids=[b[0] for b in ODD_BUT_VALID])
def test_unusual_but_valid_scans_are_segmented(tmp_path, capsys, tiny_checkpoint, name, make):
    path = make(tmp_path / name)
    out = tmp_path / "mask.tif"
    assert main(["predict", str(path), "-o", str(out), "--weights", str(tiny_checkpoint)]) == 0
    err = capsys.readouterr().err
    assert read_volume(out).data.shape == read_volume(path).data.shape
    assert ("NaN or infinite pixels" in err) == (name == "nan_and_inf.tif"), err


@pytest.mark.parametrize("name, make, phrase", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_napari_reader_notifies_and_opens_nothing(tmp_path, monkeypatch, name, make, phrase):
    pytest.importorskip("napari")
    import napari_octfluid._reader as reader

    shown = []
    monkeypatch.setattr(reader, "show_error", shown.append)
    path = make(tmp_path / name)
    before = fingerprint(path)
    assert reader.read_scan_layers(str(path)) == reader.NO_LAYERS
    assert len(shown) == 1 and phrase in shown[0] and path.name in shown[0]
    assert fingerprint(path) == before


@pytest.mark.parametrize("dtype, value", [(np.uint8, 0), (np.uint16, 37), (np.float32, 0.5)])
def test_a_blank_scan_is_refused_not_segmented_to_no_fluid(tmp_path, capsys, tiny_checkpoint, dtype, value):
    """Segmented, a blank image (a failed export) read as an eye without fluid."""
    path = tiff(tmp_path / "blank.tif", np.full((2, 64, 80), value, dtype))
    out = tmp_path / "mask.tif"
    assert main(["predict", str(path), "-o", str(out), "--weights", str(tiny_checkpoint)]) == 1
    _one_clear_line(capsys.readouterr().err, f"every pixel is {value:g}: the image is blank", "predict")
    assert not out.exists()
