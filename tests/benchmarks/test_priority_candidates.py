"""The review priorities tried first (benchmarks/priority_candidates.py) on hand-made B-scans with hand-computed
values."""

import numpy as np
import pytest
from priority_candidates import expected_dice_error, mean_entropy_bits, pixels_at_risk, recentred_probability

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


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ([0.1, 0.5, 0.9], [10, 50, 90], [1 / 3, 2 / 3, 1.0]),  # both agree: the ranks themselves
        ([0.1, 0.5, 0.9], [90, 50, 10], [2 / 3, 2 / 3, 2 / 3]),  # opposite orders cancel out
        ([0.0, 0.0, 0.4], [5, 1, 3], [(1.5 + 3) / 6, (1.5 + 1) / 6, (3 + 2) / 6]),  # ties share their mean rank
    ],
)
def test_the_combined_mirrored_priority_averages_each_bscans_ranks(first, second, expected):
    from bench_review_priority import mean_rank

    np.testing.assert_allclose(mean_rank(np.asarray(first), np.asarray(second)), expected)
