"""The Review tab through napari, with real mouse and key events where a user would use them: the table's colours,
numbers and size, the table following the slider and a click moving the viewer, the keyboard shortcuts, and
statuses that stay right after an undo on a B-scan that is not on screen (also for edits made before the layer was
tracked, and for a duplicated layer)."""

import numpy as np
import pytest
from napari.layers import Labels
from napari.layers._layer_actions import _duplicate_layer
from napari.utils.key_bindings import coerce_keybinding
from qtpy.QtCore import QPoint, Qt
from qtpy.QtGui import QColor

from napari_octfluid._layers import REVIEW_KEY
from napari_octfluid._qt.click_tools import SHORTCUTS as CLICK_TOOL_SHORTCUTS
from napari_octfluid._qt.review import SHORTCUTS
from napari_octfluid._qt.review_table import MINIMUM_ROWS, STATUS_COLOURS
from napari_octfluid._qt.review_tracking import review_state, tracker_for
from napari_octfluid.review import ReviewState, Status

UNCERTAINTY = np.array([0.0115, 0.25, 0.0032, 0.9, 0.5, 0.125, 0.0, 0.75, 0.33, 0.01, 0.6])  # one per B-scan


@pytest.fixture
def reviewing(make_napari_viewer, qtbot):
    """The sample scan's expert mask reviewed as if a model had predicted it (with an uncertainty per B-scan)."""
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("octfluid", "duke_subject01")
    labels = viewer.layers[-1]
    labels.metadata[REVIEW_KEY] = ReviewState.start(labels.data, "model.pt", UNCERTAINTY)
    _, review = viewer.window.add_plugin_dock_widget("octfluid", "Review")
    review.labels_layer.value = labels
    viewer.layers.selection.active = labels
    viewer.dims.set_current_step(0, 0)
    qtbot.wait(50)
    return viewer, review, labels


def settle(qtbot):
    qtbot.wait(50)  # statuses update once control returns to the event loop, as after a brush stroke


def statuses(review):
    return [row[1] for row in review.table.data.to_list()]


def row_colour(review, row: int) -> QColor | None:
    brush = review.table.native.item(row, 1).background()
    return None if brush.style() == Qt.BrushStyle.NoBrush else brush.color()


def canvas(viewer):
    return viewer.window._qt_viewer.canvas.native


def press(viewer, qtbot, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(canvas(viewer), key, modifier)
    settle(qtbot)


def paint_stroke_with_the_mouse(viewer, labels, qtbot):
    """A brush stroke across the middle of the canvas, with Qt mouse events, as a user paints."""
    labels.mode, labels.brush_size, labels.selected_label = "paint", 30, 1
    widget = canvas(viewer)
    centre = widget.rect().center()
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=centre)
    for dx in range(10, 70, 10):
        qtbot.mouseMove(widget, QPoint(centre.x() + dx, centre.y()))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=QPoint(centre.x() + 60, centre.y()))
    labels.mode = "pan_zoom"
    settle(qtbot)


def test_rows_are_coloured_by_status_with_readable_numbers(reviewing, qtbot):
    viewer, review, labels = reviewing
    labels.paint((2, 250, 380), 1)
    viewer.dims.set_current_step(0, 4)
    review.toggle_accept()
    settle(qtbot)
    assert statuses(review)[:5] == ["unreviewed", "unreviewed", "corrected", "unreviewed", "accepted"]
    assert row_colour(review, 2).name().upper() == STATUS_COLOURS["corrected"]
    assert row_colour(review, 4).name().upper() == STATUS_COLOURS["accepted"]
    assert row_colour(review, 0) is None  # unreviewed: no colour
    assert row_colour(review, 2) != row_colour(review, 4)
    labels.paint((2, 100, 100), 1)  # B-scan 2 edited again: still corrected, its fluid count follows
    settle(qtbot)
    assert review.table.data.to_list()[2][2] == int(np.count_nonzero(labels.data[2]))

    table = review.table.native
    texts = [[table.item(row, column).text() for column in range(4)] for row in range(table.rowCount())]
    assert [row[3] for row in texts[:4]] == ["0.011", "0.250", "0.003", "0.900"]  # fixed decimals, no 1.15e-02
    metrics = table.fontMetrics()
    for column in range(4):  # every number whole on screen: each column at least as wide as its widest text
        widest = max(metrics.horizontalAdvance(row[column]) for row in texts)
        assert table.columnWidth(column) >= widest
    row_height = table.verticalHeader().defaultSectionSize()
    assert table.minimumHeight() >= MINIMUM_ROWS * row_height
    assert table.editTriggers() == table.EditTrigger.NoEditTriggers


def test_an_unannotated_bscan_says_so(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    data = np.zeros((3, 64, 64), np.uint8)
    data[1] = 255  # the grader skipped B-scan 1
    labels = viewer.add_labels(data, name="grader")
    _, review = viewer.window.add_plugin_dock_widget("octfluid", "Review")
    review.labels_layer.value = labels
    assert statuses(review) == ["unreviewed", "not annotated", "unreviewed"]
    assert row_colour(review, 1).name().upper() == STATUS_COLOURS["not annotated"]


def test_the_table_follows_the_slider_and_a_click_moves_the_viewer(reviewing, qtbot):
    viewer, review, labels = reviewing
    table = review.table.native
    table.setFixedHeight(table.minimumHeight())  # the least room it gets: not every row is visible
    for z in (10, 0, 7):
        viewer.dims.set_current_step(0, z)
        assert review.table.selected_bscan() == z
        assert table.viewport().rect().contains(table.visualItemRect(table.item(z, 0)).center())  # scrolled to it

    item = table.item(3, 1)
    table.scrollToItem(item)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center())
    assert viewer.dims.current_step[0] == 3 and review.table.selected_bscan() == 3
    qtbot.keyClick(table, Qt.Key.Key_Down)  # the keyboard in the table moves the viewer too
    assert viewer.dims.current_step[0] == 4


def test_keyboard_shortcuts_accept_and_move_through_the_bscans(reviewing, qtbot):
    viewer, review, labels = reviewing
    press(viewer, qtbot, Qt.Key.Key_A)
    assert statuses(review)[0] == "accepted" and review.accept_button.text == "Un-accept this B-scan (A)"
    press(viewer, qtbot, Qt.Key.Key_U)
    assert viewer.dims.current_step[0] == 1  # the next unreviewed
    press(viewer, qtbot, Qt.Key.Key_U, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.dims.current_step[0] == 10  # the previous unreviewed: 0 is accepted, so round to the end
    viewer.dims.set_current_step(0, 0)
    press(viewer, qtbot, Qt.Key.Key_N)
    assert viewer.dims.current_step[0] == 3  # the most uncertain unreviewed (0.9)
    press(viewer, qtbot, Qt.Key.Key_N)
    assert viewer.dims.current_step[0] == 7  # then 0.75
    press(viewer, qtbot, Qt.Key.Key_A)
    press(viewer, qtbot, Qt.Key.Key_A)  # a second press takes the acceptance back
    assert statuses(review)[7] == "unreviewed"

    viewer.layers.selection.active = viewer.layers[0]  # the scan selected: the keys still work
    press(viewer, qtbot, Qt.Key.Key_A)
    assert statuses(review)[7] == "accepted"


def test_the_shortcuts_are_in_the_tooltips_and_clash_with_no_other_key(reviewing):
    viewer, review, _ = reviewing
    for action, (key, _, _) in SHORTCUTS.items():
        assert f"Shortcut: {key.replace('-', '+')}" in review.buttons[action].tooltip
    ours = {coerce_keybinding(key) for key, _, _ in SHORTCUTS.values()}
    assert len(ours) == len(SHORTCUTS)
    taken = set(Labels.class_keymap) | set(type(viewer).__mro__[1].class_keymap)  # napari's Labels and viewer keys
    taken |= {coerce_keybinding(key) for key, _, _ in CLICK_TOOL_SHORTCUTS.values()}
    assert not ours & taken


def test_undo_and_redo_on_a_bscan_not_on_screen_with_napari_keys(reviewing, qtbot):
    viewer, review, labels = reviewing
    viewer.dims.set_current_step(0, 2)
    predicted = labels.data[2].copy()
    paint_stroke_with_the_mouse(viewer, labels, qtbot)
    assert (labels.data[2] != predicted).any() and statuses(review)[2] == "corrected"

    viewer.dims.set_current_step(0, 5)
    press(viewer, qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # napari's undo, B-scan 5 on screen
    np.testing.assert_array_equal(labels.data[2], predicted)
    assert statuses(review)[2] == "unreviewed" and review_state(labels).status(2) is Status.UNREVIEWED
    press(viewer, qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert statuses(review)[2] == "corrected" and viewer.dims.current_step[0] == 5


def test_a_hidden_layer_s_undo_is_seen_by_whoever_reads_the_statuses(reviewing, qtbot):
    viewer, review, labels = reviewing
    labels.paint((2, 250, 380), 1)
    settle(qtbot)
    labels.visible = False  # no redraw announces the undo
    viewer.dims.set_current_step(0, 5)
    labels.undo()
    assert review_state(labels).status(2) is Status.UNREVIEWED  # what Fine-tune reads before training


def test_edits_made_before_the_layer_was_tracked_are_followed_through_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    predicted = np.zeros((6, 64, 64), np.uint8)
    labels = viewer.add_labels(predicted.copy(), name="scan fluid")
    labels.metadata[REVIEW_KEY] = ReviewState.start(predicted, "model.pt")  # as a prediction leaves it
    labels.brush_size = 5
    labels.paint((2, 30, 30), 1)  # painted before anything tracks the layer (a tab not yet built)
    tracker = tracker_for(labels, viewer)
    assert tracker.state.status(2) is Status.CORRECTED
    viewer.dims.set_current_step(0, 5)
    labels.undo()
    tracker.tick()
    assert tracker.state.status(2) is Status.UNREVIEWED
    labels.redo()
    tracker.tick()
    assert tracker.state.status(2) is Status.CORRECTED


def test_a_duplicated_layer_is_reviewed_on_its_own(reviewing, qtbot):
    viewer, review, labels = reviewing
    viewer.layers.selection = {labels}
    _duplicate_layer(viewer.layers)  # napari's Layer > Duplicate: the copy's metadata holds the same review state
    copy = viewer.layers[f"{labels.name} copy"]
    viewer.layers.selection.active = copy
    assert review.labels_layer.value is copy  # Review follows the fluid labels selected
    viewer.layers.selection.active = labels
    copy_tracker, tracker = tracker_for(copy, viewer), review.tracker
    assert tracker.layer is labels
    assert copy_tracker.state is not tracker.state

    viewer.dims.set_current_step(0, 2)
    labels.paint((2, 250, 380), 1)
    settle(qtbot)
    copy_tracker.tick()  # the copy, unchanged on B-scan 2, must not take the original's correction back
    tracker.tick()
    assert tracker.state.status(2) is Status.CORRECTED and statuses(review)[2] == "corrected"
    assert copy_tracker.state.status(2) is Status.UNREVIEWED
