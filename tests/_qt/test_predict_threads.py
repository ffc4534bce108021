"""The Predict widget's Threads setting: the count asked for, or (0) the command line's choice less the interface's
core, in the worker thread that runs the model."""

import torch

from napari_octfluid import devices
from napari_octfluid._qt import predict as predict_widget
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE


def test_the_predict_widget_runs_with_its_threads_setting(make_napari_viewer, qtbot, tiny_checkpoint, monkeypatch):
    seen = []
    real_predict = predict_widget.predict

    def recording_predict(*args):
        seen.append(torch.get_num_threads())
        return (yield from real_predict(*args))

    monkeypatch.setattr(predict_widget, "predict", recording_predict)
    monkeypatch.setattr(devices, "free_cores", lambda *_: 3.0)  # auto: 3 free, less the interface's core
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.weights.value, widget.checkpoint.value, widget.device.value = CHECKPOINT_CHOICE, tiny_checkpoint, "cpu"
    for setting in (1, 0):
        widget.threads.value = setting
        widget.run()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert seen == [1, 2]
