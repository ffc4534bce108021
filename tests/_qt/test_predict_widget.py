"""The Predict widget runs the model in a worker thread into an editable, undoable Labels layer."""

import numpy as np
import pytest
from event_processing_bar import EventProcessingBar

from napari_octfluid._qt import jobs
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE, PredictWidget


@pytest.fixture
def viewer_and_widget(make_napari_viewer, tiny_checkpoint):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.weights.value = CHECKPOINT_CHOICE
    widget.checkpoint.value = tiny_checkpoint
    widget.device.value = "cpu"
    return viewer, widget


def run_and_wait(widget, qtbot):
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)


def test_prediction_becomes_an_editable_undoable_labels_layer(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    widget.with_probability.value = True
    run_and_wait(widget, qtbot)
    labels = viewer.layers["duke_dme_subject01 fluid"]
    scan = viewer.layers["duke_dme_subject01"]
    assert labels._type_string == "labels" and labels.data.shape == scan.data.shape
    assert labels.data.dtype == np.uint8 and tuple(labels.scale) == tuple(scan.scale)
    probability = viewer.layers["duke_dme_subject01 fluid probability"]
    assert probability.data.dtype == np.float32
    assert widget.status.value.startswith("Done in")

    before = labels.data.copy()
    labels.brush_size = 5
    labels.paint((5, 100, 100), 2)  # what the brush does, with a label the prediction has not used
    assert labels.data[5, 100, 100] == 2 and not np.array_equal(labels.data, before)
    labels.undo()
    np.testing.assert_array_equal(labels.data, before)


def test_rerun_keeps_edited_bscans_and_asks_only_for_untracked_labels(viewer_and_widget, qtbot, monkeypatch):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    labels = viewer.layers["duke_dme_subject01 fluid"]
    asked = []
    monkeypatch.setattr(PredictWidget, "confirm_replace", lambda self, name: asked.append(name) or False)
    labels.paint((3, 50, 50), 2, refresh=True)
    qtbot.wait(50)
    edited = labels.data[3].copy()
    run_and_wait(widget, qtbot)  # reviewed B-scans are protected: no need to ask
    assert asked == []
    np.testing.assert_array_equal(labels.data[3], edited)

    viewer.layers.remove(labels)  # labels of the same name that octfluid did not make (e.g. a script's)
    before = np.zeros_like(edited, shape=labels.data.shape)
    before[4, 40:60, 40:60] = 2
    viewer.add_labels(before.copy(), name="duke_dme_subject01 fluid")
    run_and_wait(widget, qtbot)
    assert asked == ["duke_dme_subject01 fluid"]
    np.testing.assert_array_equal(viewer.layers["duke_dme_subject01 fluid"].data, before)  # the user said no
    assert widget.status.value == "Kept your edited labels."


def test_cancel_leaves_the_layers_as_they_were(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    widget.batch_size.value = 1
    widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert "duke_dme_subject01 fluid" not in viewer.layers
    assert widget.status.value == "Cancelled: nothing was changed."


def test_without_weights_the_widget_says_so(make_napari_viewer, monkeypatch):
    monkeypatch.setattr("napari_octfluid._qt.predict.default_weights_path", lambda: None)  # an install without them
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.run()
    assert widget.status.value == "No trained weights installed."
    assert len(viewer.layers) == 2


def test_a_second_prediction_is_refused_while_one_runs(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    widget.batch_size.value = 1
    widget.run()
    first = widget.worker
    widget.run()
    assert widget.worker is first
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert len([layer for layer in viewer.layers if layer.name == "duke_dme_subject01 fluid"]) == 1


def test_the_final_message_wins_over_a_progress_bar_that_processes_events(viewer_and_widget, qtbot, monkeypatch):
    """napari's progress bar processes events as it updates: with the prediction's result and end queued by then,
    they were handled inside the last progress event, whose stale '11/11 B-scans' then replaced 'Done in ...'."""
    viewer, widget = viewer_and_widget
    monkeypatch.setattr(jobs, "progress", EventProcessingBar)
    EventProcessingBar.instances.clear()
    run_and_wait(widget, qtbot)
    assert EventProcessingBar.instances[-1].processed_with_the_end_queued
    assert widget.status.value.startswith("Done in")
    assert "duke_dme_subject01 fluid" in viewer.layers
