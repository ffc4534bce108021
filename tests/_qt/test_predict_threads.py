"""The widgets' torch threads follow the command line's rule (``devices.choose_threads``): the count asked for, or
(0, auto) exactly what ``octfluid predict`` would choose on the same machine, set in the worker thread that runs the
model."""

import threading

import pytest
import torch

from napari_octfluid import devices
from napari_octfluid._qt import predict as predict_widget
from napari_octfluid._qt._threads import with_threads
from napari_octfluid._qt.predict import CHECKPOINT_CHOICE
from napari_octfluid.cli._common import apply_threads


def threads_in_a_worker(requested):
    """The torch threads a widget's job sees in its worker thread."""
    seen = []

    def job():
        seen.append(torch.get_num_threads())
        yield
        return None

    def worker():
        for _ in with_threads(job, requested)():
            pass

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    return seen[0]


# cores free now -> threads: a core more than half free is worth a thread, and there is always one
@pytest.mark.parametrize("free, expected", [(3.0, 3), (1.6, 2), (1.4, 1), (0.2, 1), (0.0, 1)])
def test_a_widget_job_chooses_its_threads_as_the_command_line_does(monkeypatch, free, expected):
    monkeypatch.setattr(devices, "free_cores", lambda *_: free)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert apply_threads(None) == expected  # octfluid predict (conftest puts the process's count back)
    assert threads_in_a_worker(None) == expected


def test_the_setting_and_omp_num_threads_win_in_the_widgets_as_in_the_command_line(monkeypatch):
    monkeypatch.setattr(devices, "free_cores", lambda *_: 2.0)
    assert threads_in_a_worker(1) == apply_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_in_a_worker(None) == apply_threads(None) == 3


def test_the_predict_widget_runs_with_its_threads_setting(make_napari_viewer, qtbot, tiny_checkpoint, monkeypatch):
    seen = []
    real_predict = predict_widget.predict

    def recording_predict(*args):
        seen.append(torch.get_num_threads())
        return (yield from real_predict(*args))

    monkeypatch.setattr(predict_widget, "predict", recording_predict)
    monkeypatch.setattr(devices, "free_cores", lambda *_: 3.0)  # auto: the command line would take 3
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.weights.value, widget.checkpoint.value, widget.device.value = CHECKPOINT_CHOICE, tiny_checkpoint, "cpu"
    for setting in (1, 0):
        widget.threads.value = setting
        widget.run()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert seen == [1, 3]
