"""Review dock widget: the B-scans of a labels layer with their fluid, and a jump to the next one with fluid."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import Container, Label, PushButton, Table

from ..quantify import fluid_pixels_per_bscan
from ._layer_pick import labels_picker


class ReviewWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.labels = labels_picker()
        self.table = Table(value={"B-scan": [], "fluid pixels": []})
        self.next_with_fluid = PushButton(text="Next B-scan with fluid")
        self.status = Label(value="")
        self.extend([self.labels, self.table, self.next_with_fluid, self.status])
        self.labels.changed.connect(self.refresh)
        self.next_with_fluid.changed.connect(self.go_to_next_with_fluid)
        self.refresh()

    def _fluid_per_bscan(self) -> np.ndarray:
        layer = self.labels.value
        return np.zeros(0, int) if layer is None else fluid_pixels_per_bscan(np.asarray(layer.data))

    def refresh(self, *_) -> None:
        pixels = self._fluid_per_bscan()
        self.table.value = {"B-scan": list(range(len(pixels))), "fluid pixels": [int(p) for p in pixels]}
        self.status.value = f"{int((pixels > 0).sum())} of {len(pixels)} B-scans hold fluid" if len(pixels) else ""

    def go_to_next_with_fluid(self, *_) -> int | None:
        """Move the viewer to the next B-scan (after the current one, wrapping) whose labels hold fluid."""
        pixels = self._fluid_per_bscan()
        if not pixels.any():
            self.status.value = "No B-scan with fluid."
            return None
        current = int(self._viewer.dims.current_step[0])
        order = np.roll(np.arange(len(pixels)), -(current + 1))
        target = int(next(i for i in order if pixels[i] > 0))
        self._viewer.dims.set_current_step(0, target)
        self.status.value = f"B-scan {target}: {int(pixels[target])} fluid pixels"
        return target
