"""Issue 18: the command line tells prediction the scan's axial pixel size from its file, and ``octfluid evaluate``
tells it the shifted one unless ``--no-axial-resampling``."""

import numpy as np
import pytest

from napari_octfluid import evaluation, inference
from napari_octfluid.axial import SPECTRALIS_AXIAL_SPACING_MM
from napari_octfluid.cli import main
from napari_octfluid.io import write_tiff


@pytest.fixture
def recorded_spacings(monkeypatch):
    """The ``axial_spacing_mm`` every prediction is asked with (through the one ``inference.predict``)."""
    asked = []
    real_predict = inference.predict

    def recording_predict(*args, **kwargs):
        asked.append(args[5] if len(args) > 5 else kwargs.get("axial_spacing_mm"))
        return (yield from real_predict(*args, **kwargs))

    monkeypatch.setattr(inference, "predict", recording_predict)
    monkeypatch.setattr(evaluation, "predict", recording_predict)
    return asked


@pytest.fixture
def scan_and_mask(tmp_path):
    images = np.random.default_rng(0).normal(150, 20, (2, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros(images.shape, np.uint8)
    labels[:, 20:36, 24:44] = 1
    images[labels == 1] = 40
    spacing = (0.12, 0.00194, 0.0118)  # a Cirrus-like axial pixel size, half the model's
    return write_tiff(tmp_path / "scan.tif", images, spacing, kind="image"), write_tiff(tmp_path / "mask.tif", labels)


def test_predict_passes_the_files_axial_spacing(tiny_checkpoint, scan_and_mask, tmp_path, recorded_spacings):
    scan, _ = scan_and_mask
    common = ["--weights", str(tiny_checkpoint), "--device", "cpu"]
    assert main(["predict", str(scan), "-o", str(tmp_path / "one.tif"), *common]) == 0
    assert main(["predict", str(scan), "-o", f"{tmp_path / 'batch'}/", *common]) == 0
    assert recorded_spacings == [pytest.approx(0.00194)] * 2


def test_evaluate_passes_the_shifted_spacing_unless_told_not_to(tiny_checkpoint, tmp_path, recorded_spacings):
    images = np.random.default_rng(0).normal(150, 20, (2, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros(images.shape, np.uint8)
    labels[:, 20:36, 24:44] = 1
    # no spacing in the file: clean stays unknown, axial_x2 is taken at the training pixel size, halved
    scan, mask = write_tiff(tmp_path / "s.tif", images, kind="image"), write_tiff(tmp_path / "m.tif", labels)
    argv = ["evaluate", "--images", str(scan), "--labels", str(mask), "--weights", str(tiny_checkpoint)]
    assert main([*argv, "--shift", "axial_x2", "--device", "cpu"]) == 0
    assert recorded_spacings == [None, pytest.approx(SPECTRALIS_AXIAL_SPACING_MM / 2)]
    recorded_spacings.clear()
    assert main([*argv, "--shift", "axial_x2", "--device", "cpu", "--no-axial-resampling"]) == 0
    assert recorded_spacings == [None, None]


def test_predict_takes_a_typed_spacing_where_the_file_gives_none_and_says_so_otherwise(
    tiny_checkpoint, tmp_path, recorded_spacings, capsys
):
    """A TIFF from another device records no depth spacing: without --spacing it is segmented at its own rows, and a
    notice says so; with it, the model sees the cysts at their size and the mask keeps the spacing for quantify."""
    from napari_octfluid.io import read_volume

    images = np.random.default_rng(0).normal(150, 20, (2, 64, 64)).clip(0, 255).astype(np.uint8)
    scan = write_tiff(tmp_path / "scan.tif", images, kind="image")
    common = ["--weights", str(tiny_checkpoint), "--device", "cpu"]
    assert main(["predict", str(scan), "-o", str(tmp_path / "a.tif"), *common]) == 0
    assert "records no depth spacing" in capsys.readouterr().err
    assert main(["predict", str(scan), "-o", str(tmp_path / "b.tif"), "--spacing", "120", "1.95", "11.7", *common]) == 0
    err = capsys.readouterr().err
    assert "records no depth spacing" not in err and "replaces" not in err
    assert recorded_spacings == [None, pytest.approx(0.00195)]
    written = read_volume(tmp_path / "b.tif")
    assert written.spacing_mm == pytest.approx((0.12, 0.00195, 0.0117))
    assert written.meta["spacing_source"] == "entered by the user"
    # a file that records one: the typed value wins, and the notice names what it replaced
    recorded = write_tiff(tmp_path / "recorded.tif", images, (0.12, 0.0039, 0.0117), kind="image")
    assert (
        main(["predict", str(recorded), "-o", str(tmp_path / "c.tif"), "--spacing", "240", "3.9", "11.7", *common]) == 0
    )
    assert "replaces the spacing recorded.tif records (between B-scans 120 um)" in capsys.readouterr().err
    # a batch takes each file's own
    assert main(["predict", str(scan), str(recorded), "-o", f"{tmp_path}/batch/", "--spacing", "1", "2", "3"]) == 1
    assert "--spacing is one scan's" in capsys.readouterr().err


def test_a_mask_or_a_blank_image_given_as_the_scan_is_refused_not_segmented_to_no_fluid(
    tiny_checkpoint, tmp_path, scan_and_mask, capsys
):
    scan, mask = scan_and_mask
    blank = write_tiff(tmp_path / "blank.tif", np.zeros((2, 64, 64), np.uint8), kind="image")
    common = ["--weights", str(tiny_checkpoint), "--device", "cpu"]
    for given, phrase in (
        (mask, "holds labels (values 0 to 1), not OCT intensities. Give the scan the mask was drawn on."),
        (blank, "every pixel is 0: the image is blank, not an OCT scan"),
    ):
        assert main(["predict", str(given), "-o", str(tmp_path / "out.tif"), *common]) == 1
        err = capsys.readouterr().err
        assert phrase in err and "Traceback" not in err
        assert not (tmp_path / "out.tif").exists()
    # in a batch its row says so, and the scans are still segmented
    assert main(["predict", str(mask), str(scan), "-o", f"{tmp_path}/batch/", *common]) == 1
    summary = (tmp_path / "batch" / "octfluid_summary.csv").read_text()
    assert "holds labels" in summary and "scan_fluid.tif" in summary
    argv = ["evaluate", "--images", str(mask), "--labels", str(mask), *common]
    assert main(argv) == 1 and "holds labels" in capsys.readouterr().err


def test_no_command_replaces_a_file_that_exists_without_overwrite(tiny_checkpoint, tmp_path, scan_and_mask, capsys):
    """`predict -o` naming an expert's mask by mistake replaced it with a prediction."""
    scan, mask = scan_and_mask
    expert = tmp_path / "expert.tif"
    expert.write_bytes(mask.read_bytes())
    table = tmp_path / "mine.csv"
    table.write_text("the user's own table")
    common = ["--weights", str(tiny_checkpoint), "--device", "cpu"]
    for argv in (
        ["predict", str(scan), "-o", str(expert), *common],
        ["predict", str(scan), "-o", str(tmp_path / "new.tif"), "--probabilities", str(expert), *common],
        ["quantify", str(mask), "--csv", str(table)],
        ["evaluate", "--images", str(scan), "--labels", str(mask), "--csv", str(table), *common],
        ["export", str(mask), "-o", str(tmp_path / "existing.nii.gz"), "--spacing", "120", "3.9", "11.7"],
    ):
        (tmp_path / "existing.nii.gz").write_bytes(b"an older export")
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "already exists" in err and "give --overwrite" in err, argv
    assert expert.read_bytes() == mask.read_bytes() and table.read_text() == "the user's own table"
    assert not (tmp_path / "new.tif").exists()
    assert main(["predict", str(scan), "-o", str(expert), "--overwrite", *common]) == 0
    assert main(["quantify", str(mask), "--csv", str(table), "--overwrite"]) == 0
    assert (
        main(
            [
                "export",
                str(mask),
                "-o",
                str(tmp_path / "existing.nii.gz"),
                "--spacing",
                "120",
                "3.9",
                "11.7",
                "--overwrite",
            ]
        )
        == 0
    )
    # a batch rewrites its own summary on every run, but not another file named as one
    batch = ["predict", str(scan), "-o", f"{tmp_path}/batch/", *common]
    assert main(batch) == 0 and main(batch) == 0
    assert main([*batch, "--summary", str(table)]) == 1 and "already exists" in capsys.readouterr().err
