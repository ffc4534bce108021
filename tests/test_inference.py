"""The prediction engine: events, shapes, normalisation, devices and out-of-memory handling."""

import numpy as np
import pytest
import torch

from napari_octfluid import inference
from napari_octfluid.devices import DeviceUnavailableError, resolve_device
from napari_octfluid.events import Notice
from napari_octfluid.inference import PredictProgress, PredictStarted, predict, run_to_end
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, load_model
from napari_octfluid.preprocess import normalize_bscans


def test_events_and_result(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    volume = np.random.default_rng(0).integers(0, 255, (5, 70, 90), dtype=np.uint8)
    events, result = run_to_end(predict(volume, model, device="cpu", batch_size=2))
    assert events[0] == PredictStarted("cpu", 2, 5)
    assert [e.done for e in events[1:]] == [2, 4, 5]
    assert result.labels.shape == volume.shape and result.labels.dtype == np.uint8
    assert result.fluid_probability.dtype == np.float32
    assert 0 <= result.fluid_probability.min() and result.fluid_probability.max() <= 1
    np.testing.assert_array_equal(result.labels, (result.fluid_probability > 0.5).astype(np.uint8))


def test_tiny_model_finds_its_synthetic_fluid(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    image = np.random.default_rng(1).normal(150, 20, (1, 64, 64))
    image[0, 20:36, 24:44] = 40
    _, result = run_to_end(predict(image, model))
    assert result.fluid_probability[0, 20:36, 24:44].mean() > result.fluid_probability[0, :10].mean()


def test_a_single_bscan_is_accepted():
    _, result = run_to_end(predict(np.zeros((40, 60)), TransUNet(MODEL_CONFIGS["tiny"])))
    assert result.labels.shape == (1, 40, 60)


def test_normalisation_is_the_same_for_8_and_16_bit_and_ignores_nan():
    bscan = np.random.default_rng(2).integers(0, 256, (30, 40))
    as_uint8 = normalize_bscans(bscan.astype(np.uint8))
    np.testing.assert_allclose(normalize_bscans(bscan.astype(np.uint16) * 257), as_uint8, atol=1e-6)
    with_nan = bscan.astype(np.float64)
    with_nan[0, :5] = np.nan
    normalized = normalize_bscans(with_nan)
    assert np.isfinite(normalized).all() and (normalized[0, :5] == 0).all()
    assert normalized.min() >= 0 and normalized.max() <= 1


def test_auto_device_and_a_missing_gpu():
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA was asked for but this machine has none"):
            resolve_device("cuda")


def test_out_of_memory_halves_the_batch_then_gives_a_clear_error(monkeypatch):
    real_forward = inference.forward
    sizes = []

    def forward_that_fits_two(model, normalised, device, outside):
        sizes.append(len(normalised))
        if len(normalised) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(model, normalised, device, outside)

    monkeypatch.setattr(inference, "forward", forward_that_fits_two)
    volume = np.random.default_rng(0).integers(0, 255, (6, 32, 32), dtype=np.uint8)
    model = TransUNet(MODEL_CONFIGS["tiny"])
    events, result = run_to_end(predict(volume, model, batch_size=8))
    assert sizes == [6, 4, 2, 2, 2]
    assert [e.message for e in events if isinstance(e, Notice)] == [
        "Out of memory on cpu: going on with batch size 4.",
        "Out of memory on cpu: going on with batch size 2.",
    ]
    assert [e.done for e in events if isinstance(e, PredictProgress)] == [2, 4, 6]
    monkeypatch.setattr(inference, "forward", real_forward)
    _, by_two = run_to_end(predict(volume, model, batch_size=2))
    np.testing.assert_array_equal(result.labels, by_two.labels)  # every B-scan in its place
    np.testing.assert_array_equal(result.fluid_probability, by_two.fluid_probability)

    monkeypatch.setattr(inference, "forward", lambda *a: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(MemoryError, match="Not enough memory"):
        run_to_end(predict(np.zeros((1, 32, 32)), TransUNet(MODEL_CONFIGS["tiny"]), batch_size=1))


def test_other_errors_are_not_mistaken_for_out_of_memory(monkeypatch):
    monkeypatch.setattr(inference, "forward", lambda *a: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_to_end(predict(np.zeros((2, 32, 32)), TransUNet(MODEL_CONFIGS["tiny"])))


def test_progress_events_are_typed():
    events, _ = run_to_end(predict(np.zeros((3, 32, 32)), TransUNet(MODEL_CONFIGS["tiny"]), batch_size=1))
    assert all(isinstance(e, (PredictStarted, PredictProgress)) for e in events)


def test_fast_labels_and_probability_match_softmax_and_argmax():
    from napari_octfluid.inference import labels_and_fluid

    logits = torch.randn(3, 4, 20, 30, dtype=torch.float64) * 5
    logits[0, 2, 0, 0] = 500.0  # overflow of exp must give P(background) = 0, not NaN
    labels, fluid = labels_and_fluid(logits)
    probabilities = logits.softmax(dim=1)
    np.testing.assert_array_equal(labels.numpy(), probabilities.argmax(dim=1).numpy())
    np.testing.assert_allclose(fluid.numpy(), 1 - probabilities[:, 0].numpy(), atol=1e-12)


@pytest.mark.parametrize("threshold", [None, 0.5, 0.98])
def test_two_class_labels_and_probability_are_the_general_forms_bits(threshold):
    """Issue 22: two classes take a shorter path, which must give the very same bits (masks identical to before)."""
    from napari_octfluid.inference import labels_and_fluid

    padded = torch.randn(3, 2, 40, 64) * 8
    padded[0, 1, :2, :2], padded[0, 0, 2:4, :2] = 200.0, 200.0  # exp overflow both ways
    logits = padded[..., :37, :50]  # the model's output is a view of its padded map
    background = logits[:, 0]
    best_fluid, best_class = logits[:, 1:].max(dim=1)
    expected_labels = torch.where(best_fluid > background, best_class + 1, 0).to(torch.uint8)
    expected_fluid = 1.0 - 1.0 / torch.exp(logits - background.unsqueeze(1)).sum(dim=1)
    if threshold is not None:
        expected_labels = (expected_fluid > threshold).to(torch.uint8)
    labels, fluid = labels_and_fluid(logits, threshold)
    assert labels.dtype == torch.uint8 and torch.equal(labels, expected_labels)
    assert torch.equal(fluid, expected_fluid)


def test_a_stored_decision_threshold_decides_the_labels(tmp_path):
    from napari_octfluid.model import save_checkpoint

    model = TransUNet(MODEL_CONFIGS["tiny"]).eval()
    image = np.random.default_rng(3).integers(0, 255, (2, 40, 60))
    _, plain = run_to_end(predict(image, model))
    model.decision_threshold = float(np.median(plain.fluid_probability))
    loaded, _ = load_model(save_checkpoint(tmp_path / "t.pt", model))
    assert loaded.decision_threshold == model.decision_threshold
    _, thresholded = run_to_end(predict(image, loaded))
    np.testing.assert_array_equal(thresholded.labels, plain.fluid_probability > model.decision_threshold)


def test_padding_is_what_touches_the_border_not_dark_cysts_inside():
    from napari_octfluid.preprocess import padding_mask

    bscan = np.full((40, 60), 120, np.uint8)
    bscan[30:, :20] = 0  # a black wedge from the export, touching the border
    bscan[:3, :] = 255  # a saturated band along the top edge
    bscan[10:15, 30:35] = 0  # a dark cyst inside the tissue
    mask = padding_mask(bscan)
    assert mask[35, 5] and mask[1, 40] and not mask[12, 32] and not mask[20, 40]
    floats = np.where(bscan == 255, 120, bscan).astype(np.float32)
    floats[0, 0] = np.nan
    assert padding_mask(floats)[35, 5] and padding_mask(floats)[0, 0] and not padding_mask(floats)[1, 40]


def test_no_fluid_is_predicted_in_padding(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    model.decision_threshold = 0.0  # a model that calls everything fluid
    volume = np.full((1, 64, 64), 150, np.uint8)
    volume[0, 40:, :24] = 0
    _, result = run_to_end(predict(volume, model, "cpu"))
    assert not result.labels[0, 40:, :24].any() and result.labels[0, :30].all()
    assert (result.fluid_probability[0, 40:, :24] == 0).all()


def test_shipped_weights_give_the_same_masks_as_before_on_the_sample_scan(monkeypatch):
    """Issue 22: the upsamplers became a 1x1 convolution + pixel shuffle and prediction runs an inference copy
    (BatchNorm folded, channels_last). Against the network as it was, ``nn.ConvTranspose2d`` upsamplers run
    through the plain model, the shipped weights give the same masks on the sample scan."""
    from napari_octfluid._sample_data import SAMPLE_SCAN
    from napari_octfluid.io import read_volume
    from napari_octfluid.weights import default_weights_path

    weights = default_weights_path()
    if weights is None:
        pytest.skip("no shipped weights in this installation")
    scan = read_volume(SAMPLE_SCAN).data
    model, _ = load_model(weights)
    _, result = run_to_end(predict(scan, model, "cpu", batch_size=4))

    before = TransUNet(model.config)
    filters = model.config.filter_num
    before.upsample = torch.nn.ModuleList(
        torch.nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2) for i in reversed(range(len(filters) - 1))
    )
    before.load_state_dict(torch.load(weights, weights_only=True)["model_state"])  # as it loaded before
    before.decision_threshold = model.decision_threshold
    before.min_lesion_pixels = model.min_lesion_pixels  # the same cleaning rules: only the network differs
    monkeypatch.setattr(inference, "fused_for_inference", lambda network: network)  # the plain model, as before
    _, expected = run_to_end(predict(scan, before, "cpu", batch_size=4))

    assert int((result.labels != expected.labels).sum()) == 0
    np.testing.assert_allclose(result.fluid_probability, expected.fluid_probability, atol=1e-5)
    assert expected.labels.any()  # the comparison covers fluid, not only background


class BrightIsFluid(torch.nn.Module):
    """Fluid wherever the normalised B-scan is bright: predictions drawn by hand."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x), (x - 0.5) * 20], dim=1)


def blobs() -> np.ndarray:
    """Two B-scans of grey tissue with bright blobs of 4 and 30 pixels (B-scan 0) and of 12 pixels (B-scan 1)."""
    volume = np.full((2, 64, 64), 100, np.uint8)
    volume[0, 10:12, 10:12] = 250  # 4
    volume[0, 30:35, 30:36] = 250  # 30
    volume[1, 40:43, 20:24] = 250  # 12
    return volume


@pytest.mark.parametrize(
    ("stored", "asked", "fluid_per_bscan"),
    [
        (None, None, [34, 12]),  # a model without a calibrated size: the rule is off
        (None, 10, [30, 12]),
        (20, None, [30, 0]),  # the calibrated size by default
        (20, 0, [34, 12]),  # 0 turns it off
        (20, 5, [30, 12]),  # a size asked for wins over the calibrated one
    ],
)
def test_predict_removes_lesions_under_the_minimum_size(stored, asked, fluid_per_bscan):
    model = BrightIsFluid()
    if stored is not None:
        model.min_lesion_pixels = stored
    _, result = run_to_end(predict(blobs(), model, "cpu", batch_size=1, min_lesion_pixels=asked))
    assert result.labels.sum(axis=(1, 2)).tolist() == fluid_per_bscan
    assert result.fluid_probability[0, 10, 10] > 0.99  # the probability is the model's: only the mask is cleaned
