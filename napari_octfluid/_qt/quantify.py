"""Quantify dock widget: fluid area per B-scan, fluid volume, fluid per ETDRS sector and the en-face fluid map,
in physical units only when the spacing is known; exported as CSV (and the labels as TIFF with spacing)."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, Table
from napari.utils.notifications import show_info, show_warning

from .._layers import META_KEY, spacing_from_layer
from ..etdrs import Fovea, enface_fluid_pixels, etdrs_fluid_volumes, find_fovea
from ..io import write_tiff
from ..quantify import (
    NL_PER_MM3,
    FluidSummary,
    SpacingError,
    SpacingUnknownError,
    check_spacing,
    summarize_fluid,
    write_summary_csv,
)
from ._layer_pick import image_picker, labels_picker
from .enface_view import EnfaceView
from .review_tracking import as_volume

UNKNOWN = 0.0  # a spin box at 0 means "spacing not known": the user must enter it
LATERALITIES = ("unknown", "OD", "OS")


class QuantifyWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.labels_layer = labels_picker()
        self.scan = image_picker("Scan (for the fovea)")
        self.spacing_um = [
            FloatSpinBox(label=f"{axis} spacing (um)", value=UNKNOWN, min=0.0, max=10000.0, step=0.01)
            for axis in ("B-scan", "Depth", "Width")
        ]
        self.laterality = ComboBox(label="Eye", choices=list(LATERALITIES))
        self.first_bscan = ComboBox(label="First B-scan is", choices=["superior", "inferior"])
        self.fovea_bscan = FloatSpinBox(label="Fovea B-scan", value=0.0, min=0.0, max=1e5)
        self.fovea_column = FloatSpinBox(label="Fovea A-scan", value=0.0, min=0.0, max=1e5)
        self.detect_button = PushButton(text="Detect fovea")
        self.cursor_button = PushButton(text="Fovea at cursor")
        self.fovea_note = Label(value="")
        self.compute_button = PushButton(text="Quantify")
        self.summary_label = Label(value="")
        self.table = Table(value={"B-scan": [], "fluid pixels": [], "area (mm^2)": []})
        self.sectors = Table(value={"ETDRS sector": [], "fluid (nL)": []})
        self.csv_path = FileEdit(label="CSV", mode="w", filter="*.csv")
        self.save_button = PushButton(text="Save CSV")
        self.tiff_path = FileEdit(label="Labels TIFF", mode="w", filter="*.tif")
        self.save_tiff_button = PushButton(text="Save labels TIFF")
        fovea_buttons = Container(layout="horizontal", widgets=[self.detect_button, self.cursor_button], labels=False)
        self.extend(
            [
                self.labels_layer,
                self.scan,
                *self.spacing_um,
                self.laterality,
                self.first_bscan,
                self.fovea_bscan,
                self.fovea_column,
                fovea_buttons,
                self.fovea_note,
                self.compute_button,
                self.summary_label,
                self.table,
                self.sectors,
            ]
        )
        self.enface = EnfaceView(on_pick=self._go_to_bscan)
        self.native.layout().addWidget(self.enface)
        self.extend([self.csv_path, self.save_button, self.tiff_path, self.save_tiff_button])
        self.labels_layer.changed.connect(self._from_layer)
        self.compute_button.changed.connect(self.compute)
        self.save_button.changed.connect(self.save_csv)
        self.save_tiff_button.changed.connect(self.save_tiff)
        self.detect_button.changed.connect(self.detect_fovea)
        self.cursor_button.changed.connect(self.fovea_at_cursor)
        napari_viewer.dims.events.current_step.connect(self._follow_bscan)
        self._summary: FluidSummary | None = None
        self._sector_volumes: dict[str, float] | None = None
        self._fovea_set = False
        self._from_layer()

    # --- what the layers say
    def _from_layer(self, *_) -> None:
        layer = self.labels_layer.value
        if layer is None:
            return
        spacing = spacing_from_layer(layer.metadata, tuple(layer.scale), tuple(layer.units))
        for box, value in zip(self.spacing_um, spacing):
            box.value = UNKNOWN if value is None else value * 1e3
        eye = str(layer.metadata.get(META_KEY, {}).get("laterality", "")).upper()
        self.laterality.value = eye if eye in LATERALITIES else "unknown"
        shape = as_volume(layer.data).shape
        self.fovea_bscan.max, self.fovea_column.max = shape[0] - 1, shape[2] - 1
        self.fovea_bscan.value, self.fovea_column.value = (shape[0] - 1) / 2, (shape[2] - 1) / 2
        self.fovea_note.value = "Fovea: scan centre until detected or set at the cursor."

    def spacing_mm(self) -> tuple[float | None, float | None, float | None]:
        return tuple(None if box.value == UNKNOWN else box.value * 1e-3 for box in self.spacing_um)  # type: ignore

    def fovea(self) -> Fovea:
        return Fovea(float(self.fovea_bscan.value), float(self.fovea_column.value), "given")

    def detect_fovea(self, *_) -> Fovea | None:
        if self.scan.value is None:
            self.fovea_note.value = "Choose the scan to detect the fovea in."
            return None
        images = as_volume(self.scan.value.data)
        fovea = find_fovea(images, self.spacing_mm())
        self.fovea_bscan.value, self.fovea_column.value = fovea.bscan, fovea.column
        self.fovea_note.value = f"Fovea: {fovea.how} at B-scan {fovea.bscan:.0f}, A-scan {fovea.column:.0f}."
        return fovea

    def fovea_at_cursor(self, *_) -> None:
        """The fovea where the mouse last was: the B-scan on screen and the A-scan under the cursor."""
        layer = self.labels_layer.value
        if layer is None:
            return
        position = layer.world_to_data(self._viewer.cursor.position)
        self.fovea_bscan.value = float(self._viewer.dims.current_step[0]) if np.ndim(layer.data) == 3 else 0.0
        self.fovea_column.value = float(np.clip(position[-1], 0, self.fovea_column.max))
        self.fovea_note.value = (
            f"Fovea: set by you at B-scan {self.fovea_bscan.value:.0f}, A-scan {self.fovea_column.value:.0f}."
        )

    # --- figures
    def compute(self, *_) -> FluidSummary | None:
        layer = self.labels_layer.value
        if layer is None:
            self.summary_label.value = "Choose a labels layer."
            return None
        try:  # the command line's rule: no absurd volume is ever shown (micrometres typed as millimetres)
            spacing = check_spacing(self.spacing_mm())
        except SpacingError as error:
            self.summary_label.value = f"Check the spacing (in micrometres): {error}"
            show_warning(str(error))
            return None
        labels = as_volume(layer.data)
        summary = summarize_fluid(labels, spacing)
        self._summary = summary
        areas = summary.area_mm2_per_bscan
        self.table.value = {
            "B-scan": list(range(len(summary.pixels_per_bscan))),
            "fluid pixels": [int(p) for p in summary.pixels_per_bscan],
            "area (mm^2)": (
                ["spacing unknown"] * len(summary.pixels_per_bscan) if areas is None else [f"{a:.4f}" for a in areas]
            ),
        }
        lines = [f"Fluid: {summary.total_pixels} pixels"]
        if areas is None:
            lines.append("Enter the depth and width spacing to get areas in mm^2.")
        if summary.volume_mm3 is None:
            lines.append("Enter all three spacings to get the volume and the ETDRS grid.")
        else:
            lines.append(f"Volume: {summary.volume_mm3:.5f} mm^3 = {summary.volume_nl:.2f} nL")
        self.summary_label.value = "\n".join(lines)
        self._compute_sectors(labels, spacing)
        self._show_enface(labels, spacing)
        return summary

    def _laterality(self) -> str | None:
        return None if self.laterality.value == "unknown" else self.laterality.value

    def _compute_sectors(self, labels: np.ndarray, spacing) -> None:
        try:
            volumes = etdrs_fluid_volumes(labels, spacing, self.fovea(), self._laterality(), self.first_bscan.value)
        except SpacingUnknownError as error:
            self._sector_volumes = None
            self.sectors.value = {"ETDRS sector": [str(error)], "fluid (nL)": [""]}
            return
        self._sector_volumes = volumes
        self.sectors.value = {
            "ETDRS sector": list(volumes),
            "fluid (nL)": [f"{v * NL_PER_MM3:.3f}" for v in volumes.values()],
        }

    def _show_enface(self, labels: np.ndarray, spacing) -> None:
        pixels = enface_fluid_pixels(labels)
        dy = spacing[1]
        thickness, unit = (pixels * dy * 1e3, "um") if dy is not None else (pixels.astype(float), "pixels")
        known = spacing[0] is not None and spacing[2] is not None
        self.enface.show_map(thickness, unit, spacing, self.fovea() if known else None)
        self._follow_bscan()

    def _follow_bscan(self, *_) -> None:
        layer = self.labels_layer.value
        if layer is not None and np.ndim(layer.data) == 3:
            self.enface.mark_bscan(int(self._viewer.dims.current_step[0]))

    def _go_to_bscan(self, z: int) -> None:
        layer = self.labels_layer.value
        if layer is not None and np.ndim(layer.data) == 3:
            self._viewer.dims.set_current_step(0, int(np.clip(z, 0, layer.data.shape[0] - 1)))

    # --- export
    def save_csv(self, *_) -> None:
        summary = self._summary or self.compute()
        if summary is None:
            return
        if not str(self.csv_path.value).strip() or str(self.csv_path.value) == ".":
            show_warning("Choose where to save the CSV first.")
            return
        path = write_summary_csv(self.csv_path.value, summary, self._sector_volumes)
        show_info(f"Saved {path}")

    def save_tiff(self, *_) -> None:
        layer = self.labels_layer.value
        if layer is None or not str(self.tiff_path.value).strip() or str(self.tiff_path.value) == ".":
            show_warning("Choose the labels and where to save them first.")
            return
        meta = {**layer.metadata.get(META_KEY, {}), "laterality": self._laterality() or ""}
        path = write_tiff(self.tiff_path.value, np.asarray(layer.data), self.spacing_mm(), meta, kind="labels")
        show_info(f"Saved {path}")
