"""The review priorities (napari_octfluid.priority) on hand-made B-scans with hand-computed values."""

import numpy as np
import pytest

from napari_octfluid.priority import (
    expected_dice_error,
    mask_disagreement,
    mean_entropy_bits,
    mirrored_disagreement,
    pixels_at_risk,
    recentred_probability,
)

THRESHOLD = 0.98


@pytest.mark.parametrize(
    ("probability", "threshold", "temperature", "expected"),
    [
        (0.98, 0.98, 1.0, 0.5),  # the decision threshold maps to 0.5
        (0.5, None, 1.0, 0.5),  # no threshold: argmax, i.e. 0.5
        (0.99, 0.98, 1.0, 1 / (1 + (0.01 / 0.99) / (0.02 / 0.98))),  # odds ratio 0.99/0.01 against 0.98/0.02
        (0.99, 0.98, 0.02, 1.0),  # sharpened: 0.7 logit above the threshold is certain
        (0.0, 0.98, 0.02, 0.0),  # no overflow warning for very negative logits
    ],
)
def test_recentred_probability(probability, threshold, temperature, expected):
    assert recentred_probability(np.float32(probability), threshold, temperature) == pytest.approx(expected, abs=1e-6)


def _bscan(fluid_probability: float, fluid_pixels: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 B-scan whose first ``fluid_pixels`` pixels are fluid with ``fluid_probability``, the rest 0."""
    labels, probability = np.zeros(16, np.uint8), np.zeros(16, np.float32)
    labels[:fluid_pixels], probability[:fluid_pixels] = 1, fluid_probability
    return labels.reshape(4, 4), probability.reshape(4, 4)


@pytest.mark.parametrize(
    ("fluid_probability", "fluid_pixels", "dice_error", "at_risk"),
    [
        (0.0, 0, 0.0, 0.0),  # no fluid and no doubt: nothing to review
        (0.98, 4, 1 - 5 / 7, 2.0),  # fluid exactly at the threshold: soft 0.5 each; 1 - (2*2+1)/(4+2+1)
        (0.999999, 4, 1 - 9 / 9, 4 * (1 - recentred_probability(np.float32(0.999999), THRESHOLD))),  # certain fluid
    ],
)
def test_priorities_by_hand(fluid_probability, fluid_pixels, dice_error, at_risk):
    labels, probability = _bscan(fluid_probability, fluid_pixels)
    assert expected_dice_error(labels, probability, THRESHOLD)[0] == pytest.approx(dice_error, abs=1e-4)
    assert pixels_at_risk(labels, probability, THRESHOLD)[0] == pytest.approx(at_risk, abs=1e-4)


def test_fluid_barely_past_the_threshold_comes_first():
    barely, sure = _bscan(0.9801), _bscan(0.9999)  # logit 0.005 and 1.6 past the threshold
    labels = np.stack([sure[0], barely[0]])
    probability = np.stack([sure[1], barely[1]])
    scores = expected_dice_error(labels, probability, THRESHOLD)
    assert scores.shape == (2,)
    assert scores[1] > 0.2 > 0.01 > scores[0]


def test_pixels_not_annotated_do_not_count():
    labels, probability = _bscan(0.98, 4)
    annotated = np.ones_like(labels, bool)
    annotated.flat[:2] = False  # two of the four doubtful fluid pixels were not annotated
    assert pixels_at_risk(labels, probability, THRESHOLD, annotated)[0] == pytest.approx(1.0, abs=1e-4)
    dice_error = expected_dice_error(labels, probability, THRESHOLD, annotated=annotated)[0]
    assert dice_error == pytest.approx(1 - 3 / 4, abs=1e-4)


@pytest.mark.parametrize("p, bits", [(0.5, 1.0), (0.0, 0.0), (1.0, 0.0), (0.11, 0.4999)])
def test_mean_entropy_in_bits(p, bits):
    assert mean_entropy_bits(np.full((1, 4, 4), p))[0] == pytest.approx(bits, abs=1e-3)


def test_a_speck_the_cleaning_removed_raises_no_doubt():
    """Fluid past the threshold that the mask leaves out (a speck under the minimum lesion size) is the mask's
    decision: a fluid-free B-scan stays at the bottom of the queue."""
    labels, probability = _bscan(0.0, 0)
    probability.flat[:3] = 0.999  # the model's speck, removed from the mask
    assert expected_dice_error(labels, probability, THRESHOLD)[0] == pytest.approx(0.0, abs=1e-6)
    assert pixels_at_risk(labels, probability, THRESHOLD)[0] == pytest.approx(0.0, abs=1e-6)


def test_mask_disagreement_by_hand():
    a = np.zeros((3, 4, 4), np.uint8)
    b = np.zeros_like(a)
    a[1, :2, :2] = 1  # 4 pixels
    b[1, :2, :1] = 1  # 2 of them: Dice 2*2/(4+2) = 2/3
    b[2, 0, 0] = 1  # only in the other mask: Dice 0
    dice_error, differing = mask_disagreement(a, b)
    np.testing.assert_allclose(dice_error, [0.0, 1 / 3, 1.0])  # B-scan 0: neither has fluid, no doubt
    np.testing.assert_array_equal(differing, [0, 2, 1])


def test_the_mirrored_pass_of_a_mirror_symmetric_model_agrees_with_the_mask(tiny_checkpoint):
    """A scan that is its own mirror image gives the same mask mirrored: no doubt anywhere."""
    from napari_octfluid.events import run_to_end
    from napari_octfluid.inference import predict
    from napari_octfluid.model import load_model

    model, _ = load_model(tiny_checkpoint)
    rng = np.random.default_rng(0)
    half = rng.normal(150, 20, (2, 64, 32)).astype(np.float32)
    half[:, 20:36, 24:] = 40  # the training's "fluid", across the middle
    scan = np.concatenate([half, half[..., ::-1]], axis=-1)
    _, result = run_to_end(predict(scan, model, "cpu"))
    _, (dice_error, differing) = run_to_end(mirrored_disagreement(scan, model, result.labels, "cpu"))
    assert dice_error.shape == (2,) and differing.shape == (2,)
    assert differing.max() <= 0.01 * 64 * 64  # up to float noise at a few pixels
