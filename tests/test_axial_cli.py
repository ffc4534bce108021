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
