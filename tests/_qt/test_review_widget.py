"""Review: statuses follow paint, fill, undo and data replacement; reviewed B-scans survive a new prediction;
corrections autosave beside the scan and come back when it is reopened."""

import numpy as np
import pytest

from napari_octfluid._qt.panel import TOOLS
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE
from napari_octfluid._sample_data import SAMPLE_SCAN
from napari_octfluid.io import read_volume, write_tiff
from napari_octfluid.io.sidecar import load_sidecar, sidecar_path
from napari_octfluid.review import Status

SPACING = (0.12, 0.0039, 0.0118)


@pytest.fixture
def scan_file(tmp_path):
    """The sample scan saved in a folder of the user's, with a spacing (the Duke export has none)."""
    return write_tiff(tmp_path / "scan.tif", read_volume(SAMPLE_SCAN).data, SPACING, {"laterality": "OD"}, kind="image")


@pytest.fixture
def predicted(make_napari_viewer, scan_file, tiny_checkpoint, qtbot):
    viewer = make_napari_viewer()
    viewer.open(scan_file, plugin="octfluid")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    predict = panel.tool("Predict")
    predict.weights.value = CHECKPOINT_CHOICE
    predict.checkpoint.value = tiny_checkpoint
    predict.device.value = "cpu"
    predict.run()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=60000)
    labels = viewer.layers["scan fluid"]
    review = panel.tool("Review")
    review.labels_layer.value = labels
    return viewer, panel, labels


def settle(qtbot):
    qtbot.wait(50)  # statuses update once control returns to the event loop, as after a brush stroke


def statuses(review):
    return [row[1] for row in review.table.data.to_list()]


def test_statuses_follow_paint_fill_undo_and_data_replacement(predicted, qtbot):
    viewer, panel, labels = predicted
    review, tracker = panel.tool("Review"), panel.tool("Review").tracker
    assert set(statuses(review)) == {"unreviewed"}
    assert tracker.state.uncertainty is not None and len(tracker.state.uncertainty) == 11

    labels.brush_size = 5
    labels.paint((3, 100, 100), 2)  # the brush
    settle(qtbot)
    assert tracker.state.status(3) is Status.CORRECTED and statuses(review)[3] == "corrected"

    viewer.dims.set_current_step(0, 3)
    labels.undo()  # napari names no B-scan for an undo: the redraw it causes, or the timer, re-checks
    tracker.tick()
    assert tracker.state.status(3) is Status.UNREVIEWED

    labels.selected_label = 2
    labels.fill((6, 5, 5), 2)  # the bucket: B-scan 6's background becomes 2
    settle(qtbot)
    assert tracker.state.status(6) is Status.CORRECTED

    viewer.dims.set_current_step(0, 8)
    review.toggle_accept()
    assert statuses(review)[8] == "accepted" and review.accept_button.text == "Un-accept this B-scan (A)"

    replaced = labels.data.copy()
    replaced[0] = 7  # data replacement (e.g. a script or another plugin)
    labels.data = replaced
    assert tracker.state.status(0) is Status.CORRECTED
    assert "3 of 11 reviewed (2 corrected, 1 accepted)" in review.status.value


def test_undo_on_a_bscan_not_on_screen_makes_it_unreviewed_again(predicted, qtbot):
    viewer, panel, labels = predicted
    review, tracker = panel.tool("Review"), panel.tool("Review").tracker
    finetune = panel.tool("Fine-tune")
    finetune.labels_layer.value = labels
    viewer.dims.set_current_step(0, 0)
    labels.brush_size = 5
    labels.paint((4, 100, 100), 2)
    settle(qtbot)
    assert statuses(review)[4] == "corrected" and finetune.chosen_bscans()[0] == [4]

    labels.undo()  # B-scan 0 is on screen
    settle(qtbot)
    assert tracker.state.status(4) is Status.UNREVIEWED and statuses(review)[4] == "unreviewed"
    assert finetune.chosen_bscans()[0] == []  # nothing left to train on
    labels.redo()
    settle(qtbot)
    assert statuses(review)[4] == "corrected"

    labels.visible = False  # a hidden layer is not redrawn: the autosave timer's check catches the undo
    labels.undo()
    tracker.tick()
    assert statuses(review)[4] == "unreviewed" and viewer.dims.current_step[0] == 0


def test_navigation_jumps_to_unreviewed_fluid_and_uncertain_bscans(predicted):
    viewer, panel, labels = predicted
    review = panel.tool("Review")
    viewer.dims.set_current_step(0, 0)
    review.toggle_accept()
    assert review.go_to("unreviewed") == 1
    uncertain = review.go_to("uncertain")
    assert uncertain == int(np.argmax(review.tracker.state.uncertainty[1:]) + 1)
    assert viewer.dims.current_step[0] == uncertain
    fluid = review.go_to("fluid")
    assert fluid is None or (labels.data[fluid] > 0).any()
    viewer.dims.set_current_step(0, 0)  # accepted: the next by priority is the most uncertain unreviewed
    assert review.go_to("priority") == uncertain
    order = review.tracker.session.priority_order()
    assert review.go_to("priority") == order[1] and viewer.dims.current_step[0] == order[1]
    review.show_probability.value = True
    assert viewer.layers["scan fluid probability"].visible


def test_a_new_prediction_leaves_reviewed_bscans_alone(predicted, qtbot):
    viewer, panel, labels = predicted
    review, predict = panel.tool("Review"), panel.tool("Predict")
    labels.paint((2, 200, 300), 3)
    settle(qtbot)
    viewer.dims.set_current_step(0, 5)
    review.toggle_accept()
    corrected, accepted = labels.data[2].copy(), labels.data[5].copy()
    labels.data[7] = 0  # an edit napari does not announce, on an unreviewed B-scan...
    predict.run()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=60000)
    np.testing.assert_array_equal(labels.data[2], corrected)
    np.testing.assert_array_equal(labels.data[5], accepted)
    state = review.tracker.state
    assert state.status(2) is Status.CORRECTED and state.status(5) is Status.ACCEPTED
    assert state.status(7) is Status.UNREVIEWED  # ...is overwritten: it was never marked as reviewed


def test_corrections_autosave_and_come_back_when_the_scan_is_reopened(predicted, scan_file, make_napari_viewer, qtbot):
    viewer, panel, labels = predicted
    review = panel.tool("Review")
    labels.paint((4, 120, 400), 5)
    settle(qtbot)
    viewer.dims.set_current_step(0, 9)
    review.toggle_accept()
    review.tracker.tick()  # the timer's work, now
    qtbot.waitUntil(lambda: review.tracker.last_saved is not None, timeout=10000)
    review.tracker.save_now()
    saved_labels, state = load_sidecar(sidecar_path(scan_file))
    np.testing.assert_array_equal(saved_labels, labels.data)
    assert state.status(4) is Status.CORRECTED and state.status(9) is Status.ACCEPTED
    assert "Autosaved" in review.saved.value

    second = make_napari_viewer()
    layers = second.open(scan_file, plugin="octfluid")
    assert [layer.name for layer in layers] == ["scan", "scan fluid"]
    restored = second.layers["scan fluid"]
    np.testing.assert_array_equal(restored.data, labels.data)
    assert tuple(restored.scale) == pytest.approx((120.0, 3.9, 11.8))
    _, second_panel = second.window.add_plugin_dock_widget("octfluid", "octfluid")
    second_review = second_panel.tool("Review")
    second_review.labels_layer.value = restored
    assert statuses(second_review)[4] == "corrected" and statuses(second_review)[9] == "accepted"
    # the first viewer still shows the scan and autosaves it: the restored copy says so and writes nothing
    assert second_review.tracker.sidecar_owner() is review.tracker
    assert "Not autosaved" in second_review.saved.value and "'scan fluid'" in second_review.saved.value
    # the restored corrections take the click tools without a new prediction: Alt-click removes the painted lesion
    from test_click_tools import alt_click

    second.dims.set_current_step(0, 4)
    assert restored.data[4, 120, 400] == 5
    alt_click(restored, (4 * 120.0, 120 * 3.9, 400 * 11.8))
    assert restored.data[4, 120, 400] == 0


def test_review_follows_the_fluid_labels_of_the_scan_selected(predicted, qtbot):
    """A second scan's mask selected (Predict selects each new mask): Review's keys act on it, not on the first."""
    viewer, panel, labels = predicted
    review = panel.tool("Review")
    second = viewer.add_labels(np.zeros_like(labels.data), name="other fluid", metadata=dict(labels.metadata))
    viewer.layers.selection.active = labels
    assert review.labels_layer.value is labels
    viewer.layers.selection.active = second
    assert review.labels_layer.value is second and review.tracker.layer is second
    viewer.dims.set_current_step(0, 3)
    review.toggle_accept()
    assert review.tracker.session.status(3) is Status.ACCEPTED
    viewer.layers.selection.active = viewer.layers["scan"]  # an image: the review stays where it is
    assert review.labels_layer.value is second


def test_finetune_trains_on_exactly_the_reviewed_bscans(predicted, qtbot):
    viewer, panel, labels = predicted
    labels.paint((1, 100, 100), 2)
    labels.paint((6, 100, 100), 2)
    settle(qtbot)
    viewer.dims.set_current_step(0, 10)
    panel.tool("Review").toggle_accept()
    finetune = panel.tool("Fine-tune")
    finetune.labels_layer.value = labels
    assert finetune.chosen_bscans() == ([1, 6, 10], [])


def test_sample_data_is_never_autosaved_into_the_installation(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    review = panel.tool("Review")
    review.labels_layer.value = viewer.layers[-1]
    assert review.tracker.sidecar is None and "Not autosaved" in review.saved.value


def test_showing_the_finetune_tab_lists_the_bscans_reviewed_meanwhile(predicted, qtbot):
    viewer, panel, labels = predicted
    finetune = panel.tool("Fine-tune")
    finetune.labels_layer.value = labels
    labels.paint((7, 100, 100), 2)
    settle(qtbot)
    panel.setCurrentIndex(list(TOOLS).index("Fine-tune"))
    assert finetune.summary.value.startswith("1 B-scans to train on: 7")


def test_labels_that_are_not_bscans_get_a_message_not_a_traceback(make_napari_viewer):
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    review = panel.tool("Review")
    review.labels_layer.value = viewer.add_labels(np.zeros((2, 3, 16, 16), np.uint8), name="timelapse")
    assert review.tracker is None and "cannot review 'timelapse'" in review.status.value
    assert review.go_to("unreviewed") is None


def test_the_review_tab_names_the_click_tools_and_their_keys(predicted):
    """The tools bind to the labels under review with no dock of their own: nothing on screen named them."""
    from napari_octfluid._qt.click_tools import SHORTCUTS

    _, panel, _ = predicted
    shown = panel.tool("Review").click_help.value
    assert "Alt-click removes a lesion" in shown and "Shift+Alt-click adds one" in shown
    assert all(key.replace("-", "+") in shown for key, _, _ in SHORTCUTS.values() if "Control" not in key)
