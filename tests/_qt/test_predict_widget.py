"""The Predict widget runs the model in a worker thread into an editable, undoable Labels layer in the model's
colours, with its progress and Cancel in the dock."""

import numpy as np
import pytest
from event_processing_bar import EventProcessingBar
from napari.utils.colormaps.standardize_color import transform_color

from napari_octfluid._qt import jobs
from napari_octfluid._qt import predict as predict_module
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE, PredictWidget
from napari_octfluid.colours import MODEL, ROLE_COLOURS, ROLE_KEY
from napari_octfluid.labels import FLUID


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
    # the probability layer follows at the next turn of the event loop, and the labels stay the active layer
    qtbot.waitUntil(lambda: "duke_dme_subject01 fluid probability" in viewer.layers, timeout=5000)
    probability = viewer.layers["duke_dme_subject01 fluid probability"]
    assert probability.visible and viewer.layers.selection.active is labels
    assert probability.data.dtype == np.float32
    # named as drawn over the scan's file, so that a spacing typed in Quantify reaches it (scan_file_of)
    assert probability.metadata["octfluid"]["drawn_over"] == scan.metadata["octfluid"]["source"]
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


def has_model_colours(layer) -> bool:
    return layer.metadata.get(ROLE_KEY) == MODEL and np.allclose(
        layer.colormap.color_dict[FLUID], transform_color(ROLE_COLOURS[MODEL])[0]
    )


def test_the_predicted_labels_have_the_model_colours(viewer_and_widget, qtbot, monkeypatch):
    viewer, widget = viewer_and_widget
    monkeypatch.setattr(PredictWidget, "confirm_replace", lambda self, name: True)
    run_and_wait(widget, qtbot)
    assert has_model_colours(viewer.layers["duke_dme_subject01 fluid"])
    viewer.layers.remove("duke_dme_subject01 fluid")
    viewer.add_labels(np.zeros(viewer.layers[0].data.shape, np.uint8), name="duke_dme_subject01 fluid")  # a script's
    assert not has_model_colours(viewer.layers["duke_dme_subject01 fluid"])
    run_and_wait(widget, qtbot)  # replaced (the user said yes): now the model's mask
    assert has_model_colours(viewer.layers["duke_dme_subject01 fluid"])


def test_the_progress_shows_in_the_dock_under_cancel_and_hides_at_the_end(viewer_and_widget, qtbot, monkeypatch):
    viewer, widget = viewer_and_widget
    display = widget.jobs.progress_widget
    assert display in widget and display.native.isHidden()
    assert widget.index(display) == widget.index(widget.cancel_button) + 1  # right under Cancel
    seen = []
    real_on_event = PredictWidget._on_event
    monkeypatch.setattr(  # on the class: a magicgui Container takes an attribute deleted for a widget to remove
        PredictWidget,
        "_on_event",
        lambda self, event: seen.append(display.native.isHidden()) or real_on_event(self, event),
    )
    widget.batch_size.value = 4
    run_and_wait(widget, qtbot)
    assert seen and not any(seen)  # shown while the model ran
    # the mask (11 B-scans), then the mirrored pass that ranks them for Review (11 more)
    assert display.native.isHidden() and (display.bar.value, display.bar.max) == (22, 22)
    assert display.step.value == "Ranking for review: 11/11 B-scans"


def test_cancel_leaves_the_layers_as_they_were(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    before = [layer.name for layer in viewer.layers]
    widget.batch_size.value = 1
    widget.run()
    assert not widget.jobs.progress_widget.native.isHidden() and widget.cancel_button.enabled
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert [layer.name for layer in viewer.layers] == before
    assert widget.status.value == "Cancelled: nothing was changed."
    assert widget.jobs.progress_widget.native.isHidden() and not widget.cancel_button.enabled


def test_cancel_in_the_middle_stops_the_model(viewer_and_widget, qtbot, monkeypatch):
    """Cancel after some B-scans: the model stops at its next batch, and no layer is added."""
    viewer, widget = viewer_and_widget
    batches = []
    real_predict = predict_module.predict

    def counted_predict(*args):
        for event in real_predict(*args):
            if type(event).__name__ == "PredictProgress":
                batches.append(event.done)
            yield event

    monkeypatch.setattr(predict_module, "predict", counted_predict)
    real_on_event = PredictWidget._on_event

    def cancel_after_the_second(self, event):
        progress = real_on_event(self, event)
        if progress is not None and progress.done == 2:
            self.cancel()
        return progress

    monkeypatch.setattr(PredictWidget, "_on_event", cancel_after_the_second)
    widget.batch_size.value = 1
    run_and_wait(widget, qtbot)
    assert batches[:2] == [1, 2] and len(batches) < 11  # stopped before the end of the scan
    assert "duke_dme_subject01 fluid" not in viewer.layers
    assert widget.status.value == "Cancelled: nothing was changed."


def test_a_scan_closed_while_it_is_segmented_gets_no_orphan_mask(viewer_and_widget, qtbot, monkeypatch):
    """Removing the scan mid-prediction used to leave its fluid and probability layers behind, over nothing."""
    viewer, widget = viewer_and_widget
    real_on_event = PredictWidget._on_event

    def close_the_scan_first(self, event):
        if type(event).__name__ == "MaskReady" and "duke_dme_subject01" in viewer.layers:
            viewer.layers.remove("duke_dme_subject01")
        return real_on_event(self, event)

    monkeypatch.setattr(PredictWidget, "_on_event", close_the_scan_first)
    run_and_wait(widget, qtbot)
    qtbot.wait(100)
    assert not [layer.name for layer in viewer.layers if layer.name.startswith("duke_dme_subject01 fluid")]
    assert widget.status.value == "'duke_dme_subject01' was closed while it was segmented: its mask was not added."


def test_a_checkpoint_that_is_not_one_is_refused_in_the_worker(viewer_and_widget, qtbot, tmp_path, monkeypatch):
    viewer, widget = viewer_and_widget
    shown = []
    monkeypatch.setattr(predict_module, "show_error", shown.append)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    widget.checkpoint.value = bad
    with qtbot.capture_exceptions():  # napari also relays a worker's error to its notifications
        run_and_wait(widget, qtbot)
    assert widget.status.value == "The checkpoint was refused." and shown[0].startswith("bad.pt: not a readable")
    assert len(viewer.layers) == 2 and widget.run_button.enabled


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


def test_the_minimum_lesion_size_reaches_the_one_prediction_path(viewer_and_widget, qtbot, monkeypatch):
    """-1 (the model's) leaves the size to the weights (inference.predict's None); 0 keeps every region; a size
    removes the smaller regions, as `octfluid predict --min-lesion-pixels` does."""
    _, widget = viewer_and_widget
    assert widget.min_lesion_pixels() is None and widget.min_lesion.value == widget.min_lesion.min
    assert "-1 = model's" in widget.min_lesion.label  # the box shows -1: its label says what that means
    asked = []
    real_predict = predict_module.predict

    def recording_predict(scan, model, device, batch_size, min_lesion_pixels=None, axial_spacing_mm=None):
        asked.append(min_lesion_pixels)
        return (yield from real_predict(scan, model, device, batch_size, min_lesion_pixels, axial_spacing_mm))

    monkeypatch.setattr(predict_module, "predict", recording_predict)
    run_and_wait(widget, qtbot)
    widget.min_lesion.value = 0
    run_and_wait(widget, qtbot)
    widget.min_lesion.value = 500
    run_and_wait(widget, qtbot)
    assert asked == [None, 0, 500]


@pytest.mark.parametrize(
    "spacing_mm, expected",
    [
        ((0.12, 0.00194, 0.0118), 0.00194),  # a Cirrus-like file: its depth spacing goes to the model
        ((None, None, None), None),  # a file without spacing: predicted at its own rows, as before
    ],
)
def test_the_layers_axial_spacing_reaches_prediction(viewer_and_widget, qtbot, monkeypatch, spacing_mm, expected):
    """The depth spacing of the layer (octfluid's metadata, as the reader stores it) is what inference.predict is
    told, so a scan from a device of another axial pixel size is resampled to the model's (issue 18)."""
    from napari_octfluid._layers import META_KEY

    viewer, widget = viewer_and_widget
    layer = viewer.layers[0]
    layer.metadata = {**layer.metadata, META_KEY: {**layer.metadata.get(META_KEY, {}), "spacing_mm": list(spacing_mm)}}
    asked = []
    real_predict = predict_module.predict

    def recording_predict(scan, model, device, batch_size, min_lesion_pixels=None, axial_spacing_mm=None):
        asked.append(axial_spacing_mm)
        return (yield from real_predict(scan, model, device, batch_size, min_lesion_pixels, axial_spacing_mm))

    monkeypatch.setattr(predict_module, "predict", recording_predict)
    run_and_wait(widget, qtbot)
    assert asked == [expected]
    assert viewer.layers[-1].data.shape == layer.data.shape  # the mask has the scan's own shape


def test_the_ranking_pass_waits_until_the_mask_and_probability_are_on_screen(viewer_and_widget, qtbot, monkeypatch):
    """On a 2-core machine the ranking's torch threads took the cores from napari while it added the layers: the
    job ranks the B-scans only once the widget has shown both."""
    viewer, widget = viewer_and_widget
    widget.with_probability.value = True
    real_ranking = predict_module.mirrored_disagreement
    layers_when_ranking_began = []

    def ranking(*args, **kwargs):
        layers_when_ranking_began.append([layer.name for layer in list(viewer.layers)])
        return (yield from real_ranking(*args, **kwargs))

    monkeypatch.setattr(predict_module, "mirrored_disagreement", ranking)
    run_and_wait(widget, qtbot)
    [names] = layers_when_ranking_began
    assert "duke_dme_subject01 fluid" in names and "duke_dme_subject01 fluid probability" in names
    assert widget.status.value.startswith("Done in")  # and the ranking then ran to its end


def test_the_ranking_pass_does_not_wait_for_a_widget_that_kept_the_users_labels(viewer_and_widget, qtbot, monkeypatch):
    """The user answered "keep my labels": the job is stopped at once, not after the wait for layers never shown."""
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    viewer.layers["duke_dme_subject01 fluid"].data = np.zeros_like(viewer.layers["duke_dme_subject01 fluid"].data)
    viewer.layers["duke_dme_subject01 fluid"].metadata.pop("octfluid_review", None)
    monkeypatch.setattr(PredictWidget, "confirm_replace", lambda self, name: False)
    monkeypatch.setattr(predict_module, "SHOWN_WAIT_S", 60.0)
    import time

    started = time.perf_counter()
    run_and_wait(widget, qtbot)
    assert time.perf_counter() - started < 30  # not the 60 s wait
    assert widget._shown.is_set()
