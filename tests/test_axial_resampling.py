"""Issue 18: a scan of another axial pixel size is resampled to the model's, segmented, and brought back to its own
rows; without a spacing (or within the tolerance) prediction is exactly as before."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from napari_octfluid import axial
from napari_octfluid.axial import SPECTRALIS_AXIAL_SPACING_MM, model_rows, resample_rows
from napari_octfluid.evaluation import axial_spacing_for
from napari_octfluid.inference import forward, predict, run_to_end
from napari_octfluid.min_lesion import remove_small_lesions
from napari_octfluid.model import MODEL_CONFIGS, CheckpointError, TransUNet, load_model, save_checkpoint
from napari_octfluid.preprocess import normalize_bscans, padding_mask
from napari_octfluid.shifts import apply_shift, shifted_spacing
from napari_octfluid.subjects import Subject

MODEL_MM = SPECTRALIS_AXIAL_SPACING_MM
TALL_ROWS = 9  # the stub model's fluid: dark runs at least this many rows tall


class TallDarkRuns(nn.Module):
    """A stand-in for a model that knows how tall fluid is in pixels: fluid where a dark region is at least
    ``TALL_ROWS`` rows tall (a vertical opening), so the same cyst is fluid or not depending on the axial sampling."""

    decision_threshold = None
    min_lesion_pixels = None
    axial_spacing_mm = MODEL_MM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dark = (x < 0.3).float()
        pool = dict(kernel_size=(TALL_ROWS, 1), stride=1, padding=(TALL_ROWS // 2, 0))
        opened = F.max_pool2d(-F.max_pool2d(-dark, **pool), **pool)
        return torch.cat([torch.zeros_like(opened), 20 * opened - 10], dim=1)


def synthetic_scan(scale: int) -> np.ndarray:
    """One B-scan of 64 x 64 pixels at the model's pixel size (``scale`` 1), or the same eye with ``scale`` times
    the rows: dark vitreous and choroid, bright textured tissue, a cyst 14 rows tall and one 6 rows tall."""
    rng = np.random.default_rng(0)
    image = np.full((64, 64), 8, np.uint8)
    image[12:52] = rng.integers(170, 230, (40, 64))
    image[20:34, 10:30] = 20  # 14 rows: fluid at any sampling
    image[38:44, 36:56] = 20  # 6 rows: too short at the model's sampling, 12 rows when sampled twice as finely
    return np.repeat(image, scale, axis=0)[None]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_twice_the_rows_at_half_the_spacing_gives_the_same_mask_upsampled():
    model = TallDarkRuns()
    _, original = run_to_end(predict(synthetic_scan(1), model, "cpu", axial_spacing_mm=MODEL_MM))
    finer = synthetic_scan(2)
    _, resampled = run_to_end(predict(finer, model, "cpu", axial_spacing_mm=MODEL_MM / 2))
    _, as_before = run_to_end(predict(finer, model, "cpu"))
    assert resampled.labels.shape == as_before.labels.shape == finer.shape  # always the scan's own rows
    expected = resample_rows(original.labels, 128, order=0)
    assert expected[0, 40:68, 10:30].all() and not expected[0, 76:88].any()  # hand-checked: the tall cyst alone
    assert dice(resampled.labels, expected) > 0.95
    assert as_before.labels[0, 76:88, 36:56].all()  # unresampled, the short cyst is tall enough: a wrong mask
    assert dice(as_before.labels, expected) < 0.85
    assert resampled.fluid_probability.shape == finer.shape and resampled.fluid_probability.dtype == np.float32


def test_half_the_rows_at_twice_the_spacing_is_brought_back_to_its_rows():
    model = TallDarkRuns()
    coarse = synthetic_scan(2)[:, ::4]  # 32 rows at twice the model's pixel size
    _, result = run_to_end(predict(coarse, model, "cpu", axial_spacing_mm=2 * MODEL_MM))
    assert result.labels.shape == (1, 32, 64)
    assert result.labels[0, 11:16, 12:28].all()  # the tall cyst (rows 10-17 here), found at the model's sampling


@pytest.mark.parametrize("spacing", [None, MODEL_MM, MODEL_MM * 1.08, MODEL_MM * 0.93])
def test_without_a_spacing_or_near_the_models_the_masks_are_as_before(tiny_checkpoint, spacing):
    """Bit for bit the mask and probability of the path before resampling existed (forward on the scan as it is,
    then the size rule), for no spacing and for spacings within the 10 % tolerance."""
    model, _ = load_model(tiny_checkpoint)
    volume = np.random.default_rng(3).integers(0, 255, (3, 70, 90), dtype=np.uint8)
    volume[:, 30:45, 20:50] = 10
    labels, fluid = [], []
    for batch in (volume[:2], volume[2:]):  # predict's batches of 2: the same kernels, so the same bits
        found, probability = forward(model, normalize_bscans(batch), torch.device("cpu"), padding_mask(batch))
        labels.append(remove_small_lesions(found, 20))
        fluid.append(probability)
    labels, fluid = np.concatenate(labels), np.concatenate(fluid)
    _, result = run_to_end(predict(volume, model, "cpu", 2, 20, spacing))
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_array_equal(result.fluid_probability, fluid)


@pytest.mark.parametrize(
    "rows, spacing, expected",
    [
        (496, None, 496),  # unknown: as it is
        (496, MODEL_MM, 496),
        (496, MODEL_MM * 1.09, 496),  # within the tolerance
        (496, MODEL_MM * 1.12, 556),  # past it: 496 * 1.12 = 555.5
        (1024, 0.00195, 516),  # a Cirrus: 1024 rows over 2 mm -> 1024 * 1.95 / 3.87
        (992, MODEL_MM / 2, 496),
        (248, MODEL_MM * 2, 496),
        (496, float("nan"), 496),
    ],
)
def test_model_rows(rows, spacing, expected):
    assert model_rows(rows, spacing, MODEL_MM) == expected


def test_resampling_keeps_label_values_and_type():
    labels = np.zeros((2, 8, 5), np.uint8)
    labels[:, 2:4] = 1
    labels[1, 6:] = 255
    up = resample_rows(labels, 16, order=0)
    assert up.dtype == np.uint8 and set(np.unique(up)) == {0, 1, 255}
    np.testing.assert_array_equal(up[:, 4:8], 1)  # rows 2-3 become 4-7
    np.testing.assert_array_equal(resample_rows(up, 8, order=0), labels)


def test_the_model_knows_its_training_axial_pixel_size(tmp_path):
    """Spectralis' for a new model and for checkpoints without the key (the shipped weights); a stored value comes
    back; a nonsense one is refused as the checkpoint's fault."""
    model = TransUNet(MODEL_CONFIGS["tiny"])
    assert model.axial_spacing_mm == MODEL_MM == 0.00387
    model.axial_spacing_mm = 0.00195
    path = save_checkpoint(tmp_path / "cirrus.pt", model)
    assert load_model(path)[0].axial_spacing_mm == pytest.approx(0.00195)
    payload = torch.load(path, weights_only=True)
    del payload[axial.CHECKPOINT_KEY]
    torch.save(payload, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt")[0].axial_spacing_mm == MODEL_MM
    for bad in ("3.87 um", 3.87, -0.001, float("nan")):
        payload[axial.CHECKPOINT_KEY] = bad
        torch.save(payload, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="axial pixel size"):
            load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    "before, after, spacing, expected",
    [
        ((3, 496, 512), (3, 992, 512), (0.12, 0.00387, 0.0118), (0.12, 0.001935, 0.0118)),  # axial x2
        ((3, 496, 512), (3, 248, 256), (0.12, 0.00387, 0.0118), (0.12, 0.00774, 0.0236)),  # axial and lateral x0.5
        ((3, 496, 512), (3, 992, 512), (None, None, None), (None, None, None)),
    ],
)
def test_shifted_spacing(before, after, spacing, expected):
    assert shifted_spacing(spacing, before, after) == pytest.approx(expected)


def test_evaluation_tells_prediction_the_shifted_axial_spacing():
    """A subject of unknown spacing is taken at the model's when a shift resamples it, and left unknown clean."""
    images = np.zeros((2, 40, 30), np.uint8)
    unknown = Subject("s", images, np.zeros_like(images))
    known = Subject("k", images, np.zeros_like(images), spacing_mm=(0.1, 0.003, 0.01))
    model = TransUNet(MODEL_CONFIGS["tiny"])
    shifted, _ = apply_shift("axial_x2", images, images)
    assert shifted.shape == (2, 80, 30)
    assert axial_spacing_for(unknown, images.shape, model) is None
    assert axial_spacing_for(unknown, shifted.shape, model) == pytest.approx(MODEL_MM / 2)
    assert axial_spacing_for(known, images.shape, model) == 0.003
    assert axial_spacing_for(known, shifted.shape, model) == pytest.approx(0.0015)
    assert axial_spacing_for(known, (2, 20, 30), model) == pytest.approx(0.006)
