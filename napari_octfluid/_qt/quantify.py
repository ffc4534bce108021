"""Quantify dock widget: fluid area per B-scan and fluid volume in physical units, exported as CSV."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import Container, FileEdit, FloatSpinBox, Label, PushButton, Table
from napari.utils.notifications import show_info

from .._layers import spacing_from_layer
from ..quantify import FluidSummary, summarize_fluid, write_summary_csv
from ._layer_pick import labels_picker

UNKNOWN = 0.0  # a spin box at 0 means "spacing not known": the user must enter it


class QuantifyWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.labels = labels_picker()
        self.spacing_um = [FloatSpinBox(label=f"{axis} spacing (um)", value=UNKNOWN, min=0.0, max=10000.0, step=0.01)
                           for axis in ("B-scan", "Depth", "Width")]
        self.compute_button = PushButton(text="Quantify")
        self.summary_label = Label(value="")
        self.table = Table(value={"B-scan": [], "fluid pixels": [], "area (mm^2)": []})
        self.csv_path = FileEdit(label="CSV", mode="w", filter="*.csv")
        self.save_button = PushButton(text="Save CSV")
        self.extend([self.labels, *self.spacing_um, self.compute_button, self.summary_label, self.table,
                     self.csv_path, self.save_button])
        self.labels.changed.connect(self._spacing_from_layer)
        self.compute_button.changed.connect(self.compute)
        self.save_button.changed.connect(self.save_csv)
        self._summary: FluidSummary | None = None
        self._spacing_from_layer()

    def _spacing_from_layer(self, *_) -> None:
        layer = self.labels.value
        if layer is None:
            return
        spacing = spacing_from_layer(layer.metadata, tuple(layer.scale), tuple(layer.units))
        for box, value in zip(self.spacing_um, spacing):
            box.value = UNKNOWN if value is None else value * 1e3

    def spacing_mm(self) -> tuple[float | None, float | None, float | None]:
        return tuple(None if box.value == UNKNOWN else box.value * 1e-3 for box in self.spacing_um)  # type: ignore

    def compute(self, *_) -> FluidSummary | None:
        layer = self.labels.value
        if layer is None:
            self.summary_label.value = "Choose a labels layer."
            return None
        summary = summarize_fluid(np.asarray(layer.data), self.spacing_mm())
        self._summary = summary
        areas = summary.area_mm2_per_bscan
        self.table.value = {
            "B-scan": list(range(len(summary.pixels_per_bscan))),
            "fluid pixels": [int(p) for p in summary.pixels_per_bscan],
            "area (mm^2)": (["spacing unknown"] * len(summary.pixels_per_bscan) if areas is None
                            else [f"{a:.4f}" for a in areas]),
        }
        lines = [f"Fluid: {summary.total_pixels} pixels"]
        if areas is None:
            lines.append("Enter the depth and width spacing to get areas in mm^2.")
        if summary.volume_mm3 is None:
            lines.append("Enter all three spacings to get the volume.")
        else:
            lines.append(f"Volume: {summary.volume_mm3:.5f} mm^3 = {summary.volume_nl:.2f} nL")
        self.summary_label.value = "\n".join(lines)
        return summary

    def save_csv(self, *_) -> None:
        summary = self._summary or self.compute()
        if summary is None:
            return
        path = write_summary_csv(self.csv_path.value, summary)
        show_info(f"Saved {path}")
