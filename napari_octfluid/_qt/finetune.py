"""Fine-tune dock widget: which B-scans of a labels layer would teach the model."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import Container, Label, PushButton

from ..quantify import fluid_pixels_per_bscan
from ._layer_pick import image_picker, labels_picker


class FinetuneWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.scan = image_picker()
        self.labels = labels_picker("Corrected labels")
        self.summary = Label(value="")
        self.train_button = PushButton(text="Train", enabled=False,
                                       tooltip="Fine-tuning needs the training engine, which this version lacks.")
        self.extend([self.scan, self.labels, self.summary, self.train_button])
        self.labels.changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_) -> None:
        layer = self.labels.value
        if layer is None:
            self.summary.value = "Choose the labels you corrected."
            return
        labelled = np.flatnonzero(fluid_pixels_per_bscan(np.asarray(layer.data)) > 0)
        self.summary.value = (f"{len(labelled)} B-scans hold labels: {', '.join(map(str, labelled[:20]))}"
                              + (" ..." if len(labelled) > 20 else ""))
