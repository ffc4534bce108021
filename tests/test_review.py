"""B-scan statuses derived from the labels, protection of reviewed B-scans, and the uncertainty ranking."""

import numpy as np
import pytest

from napari_octfluid.review import ReviewState, Status, changed_bscans


def predicted():
    labels = np.zeros((5, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    labels[3, 5:7, 1:6] = 1
    return labels


def test_nothing_is_reviewed_at_the_start_and_the_baseline_is_a_copy():
    labels = predicted()
    state = ReviewState.start(labels, model="default")
    labels[0, 0, 0] = 1
    assert state.baseline[0, 0, 0] == 0
    assert state.statuses().tolist() == [Status.UNREVIEWED] * 5


@pytest.mark.parametrize("edit", ["paint", "erase", "fill"])
def test_an_edit_marks_its_bscan_corrected(edit):
    labels = predicted()
    state = ReviewState.start(labels)
    if edit == "paint":
        labels[2, 0, 0] = 1
    elif edit == "erase":
        labels[1, 2, 2] = 0
    else:
        labels[3][labels[3] == 0] = 1
    changed = state.update(labels)
    z = {"paint": 2, "erase": 1, "fill": 3}[edit]
    assert changed.tolist() == [z]
    assert state.status(z) is Status.CORRECTED and state.reviewed.sum() == 1


def test_undoing_an_edit_makes_the_bscan_unreviewed_again():
    labels = predicted()
    state = ReviewState.start(labels)
    labels[2, 0, 0] = 1
    state.update(labels, bscans=[2])
    labels[2, 0, 0] = 0  # undo
    assert state.update(labels, bscans=[2]).tolist() == [2]
    assert state.status(2) is Status.UNREVIEWED


def test_accept_and_then_edit():
    labels = predicted()
    state = ReviewState.start(labels)
    state.accept(4)
    assert state.status(4) is Status.ACCEPTED
    labels[4, 1, 1] = 1
    state.update(labels)
    assert state.status(4) is Status.CORRECTED  # edited after accepting
    state.accept(0)
    state.accept(0, False)
    assert state.status(0) is Status.UNREVIEWED


def test_a_new_prediction_keeps_reviewed_bscans_and_rebases_the_others():
    labels = predicted()
    state = ReviewState.start(labels, model="old")
    labels[1, 0, 0] = 1  # corrected
    state.accept(3)  # accepted as predicted
    state.update(labels)
    new_prediction = np.full_like(labels, 1)
    merged = state.merge_prediction(labels, new_prediction, model="new", uncertainty=np.arange(5.0))
    np.testing.assert_array_equal(merged[1], labels[1])
    np.testing.assert_array_equal(merged[3], labels[3])
    for z in (0, 2, 4):
        assert (merged[z] == 1).all()
    assert state.statuses().tolist() == [0, Status.CORRECTED, 0, Status.ACCEPTED, 0]
    assert state.model == "new"


def test_replacing_data_of_another_shape_is_refused():
    state = ReviewState.start(predicted())
    with pytest.raises(ValueError, match="differ in shape"):
        state.update(np.zeros((5, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        state.merge_prediction(predicted(), np.zeros((4, 8, 8), np.uint8))


def test_navigation_to_the_next_and_to_the_most_uncertain():
    state = ReviewState.start(predicted(), uncertainty=np.array([0.1, 0.9, 0.3, 0.8, 0.2]))
    assert state.next_bscan(3, ~state.reviewed) == 4
    assert state.next_bscan(4, np.array([0, 1, 0, 0, 0], bool)) == 1  # wraps round
    assert state.next_bscan(0, np.zeros(5, bool)) is None
    assert state.most_uncertain_unreviewed() == 1
    state.accept(1)
    assert state.most_uncertain_unreviewed() == 3
    assert ReviewState.start(predicted()).most_uncertain_unreviewed() is None


def test_changed_bscans_needs_equal_shapes():
    assert changed_bscans(predicted(), predicted()).tolist() == [False] * 5
    with pytest.raises(ValueError):
        changed_bscans(predicted(), predicted()[:2])
