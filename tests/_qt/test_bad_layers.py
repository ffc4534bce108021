"""Layers that are not greyscale OCT B-scans get a notification from Predict and Fine-tune: no worker starts,
no layer is added, and the user's layers are left as they were."""

import numpy as np
import pytest

import napari_octfluid._qt._layer_pick as layer_pick_module
import napari_octfluid._qt.finetune as finetune_module
import napari_octfluid._qt.predict as predict_module
from napari_octfluid._qt.finetune import CHECKPOINT
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE

RNG = np.random.default_rng(0)
# (layer name, data, napari keyword arguments, a phrase the notification must contain)
BAD_LAYERS = [
    ("photo", RNG.integers(0, 255, (64, 80, 3), dtype=np.uint8), {"rgb": True}, "colour (RGB)"),
    ("photo_rgba", RNG.integers(0, 255, (64, 80, 4), dtype=np.uint8), {"rgb": True}, "colour (RGB)"),
    ("timelapse", RNG.integers(0, 255, (2, 3, 64, 80), dtype=np.uint8), {}, "4 dimensions"),
    ("one_pixel", np.array([[7.0]]), {}, "1 x 1 pixels"),
    ("thin", RNG.integers(0, 255, (3, 1, 300), dtype=np.uint8), {}, "1 x 300 pixels"),
    ("all_nan", np.full((2, 64, 80), np.nan, np.float32), {}, "no finite value"),
]


@pytest.fixture
def notifications(monkeypatch):
    shown = []
    monkeypatch.setattr(predict_module, "show_error", shown.append)
    monkeypatch.setattr(finetune_module, "show_error", shown.append)
    monkeypatch.setattr(layer_pick_module, "show_error", shown.append)
    return shown


@pytest.mark.parametrize("name, data, kwargs, phrase", BAD_LAYERS, ids=[b[0] for b in BAD_LAYERS])
def test_predict_refuses_the_layer_with_a_notification(
    make_napari_viewer, tiny_checkpoint, notifications, name, data, kwargs, phrase
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(data.copy(), name=name, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.weights.value = CHECKPOINT_CHOICE
    widget.checkpoint.value = tiny_checkpoint
    widget.scan.value = layer
    widget.run()
    assert len(notifications) == 1 and phrase in notifications[0] and name in notifications[0]
    assert widget.worker is None and [lay.name for lay in viewer.layers] == [name]
    np.testing.assert_array_equal(layer.data, data)


@pytest.mark.parametrize("name, data, kwargs, phrase", BAD_LAYERS[:2], ids=[b[0] for b in BAD_LAYERS[:2]])
def test_finetune_refuses_a_colour_scan(make_napari_viewer, tiny_checkpoint, notifications, name, data, kwargs, phrase):
    viewer = make_napari_viewer()
    scan = viewer.add_image(data.copy(), name=name, **kwargs)
    labels = np.zeros(data.shape[:2], np.uint8)
    labels[20:30, 20:40] = 1
    fluid = viewer.add_labels(labels, name=f"{name} fluid")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Fine-tune")
    widget.start_from.value = CHECKPOINT
    widget.checkpoint.value = tiny_checkpoint
    widget.scan.value, widget.labels_layer.value = scan, fluid
    widget.start()
    assert any(phrase in message for message in notifications), notifications
    assert widget.worker is None and len(viewer.layers) == 2
    np.testing.assert_array_equal(fluid.data, labels)
