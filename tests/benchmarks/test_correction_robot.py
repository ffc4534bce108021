"""The simulated clinician of benchmarks/bench_correction.py on hand-made B-scans: which tool it picks for each
kind of error, how it counts actions, and that it never touches what the expert did not annotate."""

import numpy as np
import pytest
from correction_robot import (
    BRUSH_RADIUS,
    MAX_ACTIONS,
    TARGET_DICE,
    CorrectionRobot,
    bscan_dice,
    correct_volume,
)

from napari_octfluid.labels import FLUID, IGNORE


def blank(shape=(1, 40, 60)):
    return np.zeros(shape, np.uint8), np.zeros(shape, np.float32)


@pytest.mark.parametrize(
    ("mask", "expert", "expected"),
    [
        ([[0, 0]], [[0, 0]], 1.0),  # nothing to find, nothing found
        ([[1, 0]], [[0, 0]], 0.0),
        ([[1, 1]], [[1, 0]], 2 / 3),
        ([[1, 1]], [[1, IGNORE]], 1.0),  # a pixel nobody annotated counts for nothing
    ],
)
def test_bscan_dice_by_hand(mask, expert, expected):
    assert bscan_dice(np.array(mask), np.array(expert)) == pytest.approx(expected)


def test_a_false_lesion_is_removed_in_one_click():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 5:10, 5:10] = FLUID  # a true lesion, found
    mask[0, 5:10, 5:10] = FLUID
    mask[0, 20:30, 30:45] = FLUID  # a false lesion
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["remove"]
    assert record.dice_before == pytest.approx(2 * 25 / (25 + 25 + 150))
    assert record.dice_after == 1.0 and record.error_pixels_after == 0
    np.testing.assert_array_equal(labels, expert)


def test_a_missed_lesion_is_added_at_the_probability_region_with_one_narrowing_step():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 10:20, 10:20] = FLUID
    probability[0, 10:20, 10:20] = 0.9
    probability[0, 8:22, 8:22] = np.maximum(probability[0, 8:22, 8:22], 0.52)  # a halo above 0.5, below 0.55
    # at the tools' threshold 0.5 the halo is added too (Dice 200/296); one narrowing step to 0.55 takes the lesion
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["add", "threshold"]
    np.testing.assert_array_equal(labels, expert)


def test_a_click_below_the_threshold_counts_the_widening_steps():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 10:20, 10:20] = FLUID
    probability[0, 10:20, 10:20] = 0.3  # the tools start at 0.5: four widening steps bring 0.3 in
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["add"] + ["threshold"] * 4
    np.testing.assert_array_equal(labels, expert)


def test_a_lesion_without_probability_support_is_brushed():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 10:16, 10:16] = FLUID  # within one brush stroke; the model gives it no probability at all
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["brush"]
    np.testing.assert_array_equal(labels, expert)


def test_a_wrong_rim_is_brush_work_not_a_removal():
    mask, probability = blank((1, 60, 60))
    expert = mask.copy()
    expert[0, 10:30, 10:30] = FLUID
    mask[0, 10:30, 10:38] = FLUID  # mostly right: eight columns too wide
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.dice_before < TARGET_DICE
    assert record.actions == ["brush"]  # removing the lesion would throw away 400 true pixels
    assert TARGET_DICE <= record.dice_after < 1.0  # the robot stops at the target, not at perfection


def test_a_large_error_needs_several_strokes_and_stops_at_the_target():
    mask, probability = blank((1, 120, 120))
    expert = mask.copy()
    expert[0, 5:115, 5:115] = FLUID  # far wider than one stroke; no probability, so no click helps
    _, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert 1 < len(record.actions) <= MAX_ACTIONS
    assert set(record.actions) == {"brush"}
    # every stroke fixes at most a disc of the brush's radius
    assert (
        record.error_pixels_before - record.error_pixels_after <= len(record.actions) * np.pi * (BRUSH_RADIUS + 1) ** 2
    )


def test_the_cap_ends_a_hopeless_bscan():
    mask, probability = blank((1, 200, 200))
    expert = mask.copy()
    expert[0] = FLUID
    robot = CorrectionRobot(mask, probability, expert, threshold=0.5, max_actions=3)
    record = robot.correct(0)
    assert len(record.actions) == 3 and not record.reached


def test_strokes_never_change_pixels_the_expert_did_not_annotate():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, :, :5] = IGNORE
    mask[0, 10:20, 0:5] = FLUID  # the model's fluid where nobody said what there is: left as it is
    expert[0, 10:16, 5:11] = FLUID  # a missed lesion beside the band, inside one stroke
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["brush"] and record.dice_after == 1.0
    np.testing.assert_array_equal(labels[0, :, :5], mask[0, :, :5])


def test_a_bscan_already_right_takes_no_action():
    mask, probability = blank()
    expert = mask.copy()
    _, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == [] and record.dice_after == 1.0


def test_a_false_band_holding_a_true_cyst_is_removed_then_the_cyst_added_back():
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 10:20, 10:20] = FLUID  # the cyst
    mask[0, 10:20, 10:20] = FLUID
    mask[0, 20:24, :] = FLUID  # a false band touching it: one lesion, mostly false
    probability[0, 10:20, 10:20] = 0.9
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["remove", "add"]  # the Dice falls to 0 after the removal, and rises to 1
    np.testing.assert_array_equal(labels, expert)


def test_a_removed_lesion_is_not_added_back_when_the_model_supports_all_of_it():
    """The model's probability covers the false band as well as the cyst: adding at the cyst would bring the band
    back (the robot once alternated removal and addition until its cap); the cyst is brushed instead."""
    mask, probability = blank()
    expert = mask.copy()
    expert[0, 10:20, 10:20] = FLUID
    mask[0, 10:20, 10:20] = FLUID
    mask[0, 20:24, :] = FLUID
    probability[0][mask[0] == FLUID] = 0.9
    labels, [record] = correct_volume(mask, probability, expert, threshold=0.5)
    assert record.actions == ["remove", "brush"]
    np.testing.assert_array_equal(labels, expert)
