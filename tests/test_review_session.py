"""The review session without Qt or napari: statuses follow edits, undo and redo on any B-scan, one event per
change, accept, where to go next, and what an autosave writes."""

import subprocess
import sys

import numpy as np
import pytest

from napari_octfluid.review import AutosaveLedger, ReviewChange, ReviewSession, ReviewState, Signal, Status


def predicted():
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    labels[4, 5:7, 1:6] = 2
    return labels


@pytest.fixture
def session_and_events():
    labels = predicted()
    session = ReviewSession.start(labels, model="default", uncertainty=np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.8]))
    events: list[ReviewChange] = []
    session.changed.connect(events.append)
    return labels, session, events


def test_undo_and_redo_on_a_bscan_not_on_screen_follow_its_data(session_and_events):
    labels, session, events = session_and_events
    on_screen = 0
    labels[3, 1, 1] = 5  # a paint on B-scan 3 while B-scan 0 is on screen
    assert session.edited(labels, [3]).tolist() == [3]
    assert session.status(3) is Status.CORRECTED
    assert events == [ReviewChange((3,))]

    labels[3, 1, 1] = 0  # undo: napari writes the data back and says nothing about which B-scan
    assert session.recheck(labels, also=[on_screen]).tolist() == [3]
    assert session.status(3) is Status.UNREVIEWED and not session.reviewed.any()
    labels[3, 1, 1] = 5  # redo
    session.recheck(labels, also=[on_screen])
    assert session.status(3) is Status.CORRECTED
    assert events == [ReviewChange((3,)), ReviewChange((3,)), ReviewChange((3,))]

    session.recheck(labels, also=[on_screen])  # nothing changed: nothing is emitted
    assert len(events) == 3


def test_an_edit_over_several_bscans_is_one_event(session_and_events):
    labels, session, events = session_and_events
    labels[2:5, 0, 0] = 7  # a 3D fill
    session.edited(labels, [2, 3, 4])
    assert events == [ReviewChange((2, 3, 4))]
    labels[2:5, 0, 0] = 0  # undone: three B-scans change status at once
    session.recheck(labels)
    assert events[1] == ReviewChange((2, 3, 4))
    assert [session.status(z) for z in (2, 3, 4)] == [Status.UNREVIEWED] * 3


def test_only_announced_edits_and_the_bscan_on_screen_are_rechecked(session_and_events):
    labels, session, events = session_and_events
    labels[5, 0, 0] = 3  # written by a script, never announced: not the user's review
    labels[2, 0, 0] = 3  # the same, on the B-scan on screen
    assert session.recheck(labels, also=[2]).tolist() == [2]
    assert session.status(5) is Status.UNREVIEWED and session.status(2) is Status.CORRECTED


def test_accept_emits_once_per_change(session_and_events):
    labels, session, events = session_and_events
    session.accept(4)
    session.accept(4)  # already accepted: no change, no event
    assert session.status(4) is Status.ACCEPTED and events == [ReviewChange((4,))]
    assert session.toggle_accept(4) is False and session.status(4) is Status.UNREVIEWED
    assert session.toggle_accept(0) is True and session.is_accepted(0)
    labels[0, 0, 0] = 9
    session.edited(labels, [0])
    assert session.status(0) is Status.CORRECTED  # edited after accepting
    assert len(events) == 4


def test_replaced_data_rederives_every_status_and_emits_everything_once(session_and_events):
    labels, session, events = session_and_events
    session.accept(1)
    replaced = labels.copy()
    replaced[5] = 1
    session.data_replaced(replaced)
    assert session.status(5) is Status.CORRECTED and session.status(1) is Status.ACCEPTED
    assert events[1:] == [ReviewChange((5,), everything=True)]

    session.data_replaced(np.zeros((3, 4, 4), np.uint8))  # labels of another shape: a fresh review
    assert session.n_bscans == 3 and not session.reviewed.any() and session.state.model == "default"
    assert events[-1].everything and len(events) == 3


def test_an_adopted_state_replaces_the_review_and_keeps_edited_bscans_watched(session_and_events):
    labels, session, events = session_and_events
    labels[3, 0, 0] = 4
    session.edited(labels, [3])
    fresh = ReviewState.start(labels, model="new")  # e.g. a new prediction put in the layer's metadata
    session.adopt(fresh)
    session.adopt(fresh)
    assert session.state is fresh and session.status(3) is Status.UNREVIEWED
    assert events[1:] == [ReviewChange((3,), everything=True)]
    labels[3, 0, 0] = 0  # undo of the edit made before: the B-scan is still watched
    session.recheck(labels)
    assert session.status(3) is Status.CORRECTED


def test_a_merged_prediction_is_announced(session_and_events):
    labels, session, events = session_and_events
    labels[1, 0, 0] = 1
    session.edited(labels, [1])
    merged = session.merge_prediction(labels, np.ones_like(labels), model="new", uncertainty=np.zeros(6))
    np.testing.assert_array_equal(merged[1], labels[1])
    assert (merged[0] == 1).all() and session.state.model == "new"
    assert events[-1] == ReviewChange((), everything=True)


def test_next_unreviewed_next_with_fluid_and_priority(session_and_events):
    labels, session, _ = session_and_events
    session.accept(2)
    assert session.next_unreviewed(1) == 3
    assert session.next_unreviewed(5) == 0  # wraps round
    assert session.next_with_fluid(1, labels) == 4
    assert session.next_with_fluid(4, labels) == 1
    # uncertainty 0.1, 0.9, [0.3 accepted], 0.8, 0.2, 0.8: equals in B-scan order
    assert session.priority_order().tolist() == [1, 3, 5, 4, 0]
    assert session.most_uncertain_unreviewed() == 1
    walk, current = [], 1
    for _ in range(5):
        current = session.next_by_priority(current)
        walk.append(current)
    assert walk == [3, 5, 4, 0, 1]  # walks through every unreviewed B-scan, most uncertain first
    assert session.next_by_priority(2) == 1  # from a reviewed B-scan: the most uncertain


def test_previous_unreviewed_walks_backwards_and_wraps_round(session_and_events):
    _, session, _ = session_and_events
    session.accept(2)
    session.accept(0)
    assert session.previous_unreviewed(3) == 1  # 2 is accepted
    assert session.previous_unreviewed(1) == 5  # 0 is accepted: wraps round to the end
    assert session.previous_unreviewed(4) == 3
    for z in range(6):
        session.accept(z)
    assert session.previous_unreviewed(3) is None


def test_edits_made_before_the_session_are_rechecked_once_watched(session_and_events):
    labels, session, events = session_and_events
    labels[5, 0, 0] = 3  # an edit nobody announced (made before the session followed the labels)
    session.recheck(labels)
    assert session.status(5) is Status.UNREVIEWED and events == []  # not watched: not seen
    session.watch([5])  # the tracker found B-scan 5 in napari's undo history
    session.recheck(labels)
    assert session.status(5) is Status.CORRECTED
    labels[5, 0, 0] = 0  # undone
    session.recheck(labels)
    assert session.status(5) is Status.UNREVIEWED and len(events) == 2


def test_priority_without_uncertainty_and_when_all_is_reviewed():
    session = ReviewSession.start(predicted())
    assert session.priority_order().tolist() == [0, 1, 2, 3, 4, 5]
    assert session.most_uncertain_unreviewed() is None
    for z in range(6):
        session.accept(z)
    assert session.next_unreviewed(0) is None and session.next_by_priority(0) is None
    only = ReviewSession.start(predicted()[:1])
    assert only.next_by_priority(0) is None  # the only unreviewed B-scan is the one on screen
    assert only.next_with_fluid(0, np.zeros((1, 8, 8), np.uint8)) is None


def test_overview_counts_statuses_and_fluid(session_and_events):
    labels, session, _ = session_and_events
    labels[0, 0, 0] = 1
    session.edited(labels, [0])
    session.accept(2)
    overview = session.overview(labels)
    assert overview.fluid_pixels.tolist() == [1, 4, 0, 0, 10, 0]
    assert overview.describe() == "2 of 6 reviewed (1 corrected, 1 accepted); 3 hold fluid"
    assert overview.status_labels() == ["corrected", "unreviewed", "accepted", "unreviewed", "unreviewed", "unreviewed"]


def test_an_unreviewed_bscan_nobody_annotated_says_so():
    labels = predicted()
    labels[3] = 255  # the grader skipped B-scan 3
    labels[5] = 255
    session = ReviewSession.start(labels)
    session.accept(5)  # accepting it as it is (nothing to annotate) is a review: accepted wins
    assert session.overview(labels).status_labels() == [
        "unreviewed",
        "unreviewed",
        "unreviewed",
        "not annotated",
        "unreviewed",
        "accepted",
    ]
    labels[3, 0, 0] = 0  # one pixel annotated: a correction
    session.edited(labels, [3])
    assert session.overview(labels).status_labels()[3] == "corrected"


def test_fluid_is_counted_again_where_labels_are_checked_and_a_change_is_announced(session_and_events):
    labels, session, events = session_and_events
    assert session.overview(labels).fluid_pixels.tolist() == [0, 4, 0, 0, 10, 0]
    labels[1, 0, 0:3] = 1  # B-scan 1 edited: 3 more fluid pixels
    session.edited(labels, [1])
    assert session.overview(labels).fluid_pixels.tolist() == [0, 7, 0, 0, 10, 0]
    labels[1, 0, 0] = 0  # edited again: still corrected, but its fluid changed, so its row is announced
    session.edited(labels, [1])
    assert events[-1] == ReviewChange((1,)) and session.overview(labels).fluid_pixels[1] == 6
    session.recheck(labels)  # nothing changed: nothing announced
    assert len(events) == 2
    labels[4] = 0  # replaced by a script: every B-scan counted again
    session.data_replaced(labels)
    overview = session.overview(labels)
    assert overview.fluid_pixels[4] == 0 and overview.status_labels()[4] == "corrected"


def test_the_autosave_writes_only_what_changed_and_a_snapshot_does_not_follow_later_edits(session_and_events):
    labels, session, _ = session_and_events
    ledger = AutosaveLedger()
    first = session.autosave_snapshot(labels)
    assert ledger.needs_saving(first)
    ledger.mark_saved(first)
    assert not ledger.needs_saving(session.autosave_snapshot(labels))

    labels[3, 0, 0] = 1
    session.edited(labels, [3])
    assert first.labels[3, 0, 0] == 0 and first.state.status(3) is Status.UNREVIEWED  # copies
    edited = session.autosave_snapshot(labels)
    assert ledger.needs_saving(edited)
    ledger.mark_saved(edited)
    session.accept(5)
    assert ledger.needs_saving(session.autosave_snapshot(labels))
    assert not first.state.accepted[5]


def test_signal_calls_each_listener_once_in_order_and_tolerates_disconnection():
    signal, calls = Signal(), []

    def first(value):
        calls.append(("first", value))
        signal.disconnect(first)

    second = signal.connect(lambda value: calls.append(("second", value)))
    signal.connect(first)
    signal.connect(first)
    assert len(signal) == 2
    signal.emit(1)
    signal.emit(2)
    signal.disconnect(first)  # not connected any more: nothing happens
    assert calls == [("second", 1), ("first", 1), ("second", 2)]
    signal.disconnect(second)
    assert len(signal) == 0


def test_the_review_core_imports_no_gui():
    code = "import sys, napari_octfluid.review, napari_octfluid.io.sidecar; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not roots & {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "psygnal"}
