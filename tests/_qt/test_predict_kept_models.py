"""Predict offers the models kept by name and chooses the one kept for the scan's device (issue 19, item 4)."""

import numpy as np
import pytest

from napari_octfluid._qt.model_choice import CHECKPOINT_CHOICE, DEFAULT_WEIGHTS_CHOICE
from napari_octfluid.model_library import MODELS_ENV, keep_model
from napari_octfluid.weights import default_weights_path


@pytest.fixture
def kept(tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    return keep_model(tiny_checkpoint, "Clinic A Cirrus", "Carl Zeiss Meditec Cirrus HD-OCT")


def scan(viewer, name, device=None):
    metadata = {"octfluid": {"device": device}} if device else {}
    return viewer.add_image(np.zeros((2, 64, 64), np.uint8), name=name, metadata=metadata)


def test_the_model_kept_for_the_scans_device_is_chosen_and_only_for_it(make_napari_viewer, kept):
    viewer = make_napari_viewer()
    spectralis = scan(viewer, "spectralis", "Heidelberg Engineering Spectralis")
    cirrus = scan(viewer, "cirrus", "CARL ZEISS MEDITEC Cirrus HD-OCT")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    texts = [widget.weights.native.itemText(i) for i in range(widget.weights.native.count())]
    assert texts == [DEFAULT_WEIGHTS_CHOICE, "Clinic A Cirrus (Carl Zeiss Meditec Cirrus HD-OCT)", CHECKPOINT_CHOICE]
    widget.scan.value = cirrus
    assert widget.weights_path() == kept and "'Clinic A Cirrus', kept for" in widget.status.value
    widget.scan.value = spectralis  # another device: the shipped weights, not the model adapted to the Cirrus
    assert widget.weights.value == DEFAULT_WEIGHTS_CHOICE and widget.weights_path() == default_weights_path()


def test_a_checkpoint_the_user_chose_stays_chosen_for_a_scan_without_a_kept_model(make_napari_viewer, kept):
    viewer = make_napari_viewer()
    plain = scan(viewer, "plain")
    scan(viewer, "other")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.weights.value = CHECKPOINT_CHOICE
    widget.scan.value = plain
    assert widget.weights.value == CHECKPOINT_CHOICE and not widget.checkpoint.native.isHidden()


def test_leaving_a_kept_model_for_another_device_is_said(make_napari_viewer, kept):
    viewer = make_napari_viewer()
    cirrus = scan(viewer, "cirrus", "Carl Zeiss Meditec Cirrus HD-OCT")
    plain = scan(viewer, "plain")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.scan.value = cirrus
    widget.scan.value = plain
    assert widget.weights.value == DEFAULT_WEIGHTS_CHOICE and "back to the shipped default" in widget.status.value


def test_a_model_kept_while_the_tab_was_hidden_is_offered_when_it_is_shown_again(
    make_napari_viewer, tmp_path, monkeypatch, tiny_checkpoint
):
    """Fine-tune's Keep said "Predict offers it", but the list changed only when a layer was added."""
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    viewer = make_napari_viewer()
    scan(viewer, "plain")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    widget = panel.tool("Predict")
    assert len(widget.weights.choices) == 2
    panel.setCurrentIndex(1)  # another tab, where Keep runs
    kept_path = keep_model(tiny_checkpoint, "Clinic B", "")
    panel.setCurrentIndex(0)
    assert str(kept_path) in widget.weights.choices and widget.weights.value == DEFAULT_WEIGHTS_CHOICE
