"""Predict dock widget: choose scan, weights, device and batch size, then run the model into a Labels layer."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from napari.utils.notifications import show_warning

from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path
from ._layer_pick import image_picker

DEFAULT_WEIGHTS_CHOICE = "shipped default"
CHECKPOINT_CHOICE = "checkpoint file..."


class PredictWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.scan = image_picker()
        self.weights = ComboBox(label="Weights", choices=[DEFAULT_WEIGHTS_CHOICE, CHECKPOINT_CHOICE])
        self.checkpoint = FileEdit(label="Checkpoint", filter="*.safetensors *.pt *.pth", visible=False)
        self.device = ComboBox(label="Device", choices=["auto", "cpu", "cuda"])
        self.batch_size = SpinBox(label="Batch size", value=4, min=1, max=512)
        self.run_button = PushButton(text="Predict fluid")
        self.status = Label(value="")
        self.extend([self.scan, self.weights, self.checkpoint, self.device, self.batch_size, self.run_button,
                     self.status])
        self.weights.changed.connect(lambda choice: setattr(self.checkpoint, "visible", choice == CHECKPOINT_CHOICE))
        self.run_button.changed.connect(self.run)

    def run(self) -> None:
        if self.weights.value == DEFAULT_WEIGHTS_CHOICE and default_weights_path() is None:
            self.status.value = "No trained weights installed."
            show_warning(NO_WEIGHTS_MESSAGE)
            return
        self.status.value = "Prediction arrives with the TransUNet model (not in this version)."
        show_warning("This version of octfluid opens, reviews and quantifies scans; prediction is not built yet.")
