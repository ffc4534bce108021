"""Quantify dock widget: fluid area per B-scan, fluid volume, fluid per ETDRS sector and the en-face fluid map,
in physical units only when the spacing is known; exported as CSV (and the labels as TIFF with spacing).

The spacing is typed in micrometres and checked by the command line's rule (:mod:`napari_octfluid.spacing`); once
it passes, it is applied to the labels layer, the scan and every layer opened from the same file (their scale in
micrometres and octfluid's metadata, with "entered by the user" as its source), so that File > Save and the
autosave keep it and reopening the scan restores it.

The figures are computed in a worker (:func:`quantify_volume`, through ``jobs.JobRunner``): reading the whole
volume and the ETDRS grid stalled napari's interface 150-230 ms (issue 20). Detect finds the fovea in the same
runner (:func:`locate_fovea`), since it measures the retina in every A-scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, Table
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QHeaderView, QSizePolicy, QStyledItemDelegate

from .._layers import META_KEY, layer_spacing_source, spacing_from_layer, spacing_layer_update
from .._reader_preference import prefer_octfluid_reader
from ..etdrs import (
    Fovea,
    enface_fluid_pixels,
    enface_fluid_thickness_mm,
    etdrs_coverage,
    etdrs_fluid_volumes,
    find_fovea,
)
from ..io import write_tiff
from ..quantify import (
    NL_PER_MM3,
    FluidSummary,
    QuantifyProvenance,
    SpacingUnknownError,
    fovea_text,
    readable_number,
    summarize_fluid,
    write_summary_csv,
)
from ..spacing import ENTERED_BY_USER, UM_PER_MM, SpacingError, spacing_mm_from_um
from ._layer_pick import DRAWN_OVER_KEY, image_picker, labels_picker, scan_file_of
from .enface_section import EnfaceSection
from .fit_width import narrow_combo_box, wrap_message
from .jobs import JobRunner
from .review_tracking import as_volume

UNKNOWN = 0.0  # a spin box at 0 means "spacing not known": the user must enter it
SPACING_DECIMALS = 4  # 0.0039 must stay 0.0039 (and be refused as mm), not round to 0 (unknown)
LATERALITIES = ("unknown", "OD", "OS")
SUMMARY_MIN_WIDTH_PX = 120
TABLE_MIN_HEIGHT_PX = 170  # about six rows: the tab scrolls (the panel's scroll page) rather than squeeze them to one


def readable_table(table: Table) -> Table:
    """``table`` showing its cells as written (``readable_number``: magicgui's default delegate reformats every
    number-like cell to 4 decimals or an exponent, ``2.476e-02``, ``194.6000``), six rows high, columns as wide
    as their contents."""
    table.native.setItemDelegate(QStyledItemDelegate(table.native))
    table.native.setMinimumHeight(TABLE_MIN_HEIGHT_PX)
    table.native.verticalHeader().setVisible(False)  # the row numbers repeat the first column: room for the rest
    table.native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


@dataclass(frozen=True)
class Quantified:
    """What Quantify shows: the fluid ``summary``; the ETDRS ``sector_volumes`` (mm^3) and the share of each sector
    the scan covers (``sectors_scanned``), or None and ``no_sectors`` saying why; the en-face map (``thickness[Z, X]``
    in ``thickness_unit``)."""

    summary: FluidSummary
    sector_volumes: dict[str, float] | None
    no_sectors: str
    thickness: np.ndarray
    thickness_unit: str
    sectors_scanned: dict[str, float] | None = None


def quantify_volume(
    labels: np.ndarray, spacing_mm: tuple, fovea: Fovea, laterality: str | None, first_bscan: str
) -> Generator[None, None, Quantified]:
    """Quantify's job, in the worker: ``quantify.summarize_fluid``, ``etdrs.etdrs_fluid_volumes`` (as ``octfluid
    quantify`` computes them) and the en-face fluid thickness, in um when the depth spacing is known, else in pixels."""
    yield from ()  # a generator like every job, with no step to report
    summary = summarize_fluid(labels, spacing_mm)
    footprint = (np.shape(labels)[0] if np.ndim(labels) == 3 else 1, np.shape(labels)[-1])  # B-scans, A-scans
    try:
        volumes, no_sectors = etdrs_fluid_volumes(labels, spacing_mm, fovea, laterality, first_bscan), ""
        scanned = etdrs_coverage(footprint, spacing_mm, fovea, laterality, first_bscan)
    except SpacingUnknownError as error:
        volumes, scanned, no_sectors = None, None, str(error)
    if spacing_mm[1] is not None:
        thickness, unit = enface_fluid_thickness_mm(labels, spacing_mm[1]) * UM_PER_MM, "um"
    else:
        thickness, unit = enface_fluid_pixels(labels).astype(float), "pixels"
    return Quantified(summary, volumes, no_sectors, thickness, unit, scanned)


def locate_fovea(images: np.ndarray, spacing_mm: tuple) -> Generator[None, None, Fovea]:
    """Detect's job, in the worker: ``etdrs.find_fovea`` (it measures the retina's thickness in every A-scan of
    the scan)."""
    yield from ()  # a generator like every job, with no step to report
    return find_fovea(images, spacing_mm)


class QuantifyWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        prefer_octfluid_reader()  # octfluid is in use: napari opens its formats with it from now on (once, said)
        self.labels_layer = labels_picker()
        self.scan = image_picker("Scan (for the fovea)")
        self.spacing_um = [
            FloatSpinBox(label=f"{axis} spacing (um)", value=UNKNOWN, min=0.0, max=1e6, step=0.1)
            for axis in ("B-scan", "Depth", "Width")
        ]
        for box in self.spacing_um:
            box.native.setDecimals(SPACING_DECIMALS)
            box.native.setKeyboardTracking(False)  # applied when typed in full (Enter, Tab), not per keystroke
            box.tooltip = "Micrometres (um); 0: unknown. Applied to the scan and its labels, and saved with them."
        self.spacing_note = Label(value="")
        self.laterality = ComboBox(label="Eye", choices=list(LATERALITIES))
        self.first_bscan = ComboBox(label="First B-scan is", choices=["superior", "inferior"])
        self.fovea_bscan = FloatSpinBox(label="Fovea B-scan", value=0.0, min=0.0, max=1e5)
        self.fovea_column = FloatSpinBox(label="Fovea A-scan", value=0.0, min=0.0, max=1e5)
        self.detect_button = PushButton(text="Detect", tooltip="Find the fovea in the scan (the thinnest retina)")
        self.cursor_button = PushButton(text="At cursor", tooltip="The fovea where the mouse is, in this B-scan")
        self.fovea_note = Label(value="")
        self.compute_button = PushButton(text="Quantify")
        self.jobs = JobRunner(self.native)
        self.summary_label = Label(value="")
        self.table = readable_table(Table(value={"B-scan": [], "fluid pixels": [], "area (mm^2)": []}))
        self.sectors = readable_table(Table(value={"ETDRS sector": [], "fluid (nL)": [], "scanned": []}))
        self.sectors.tooltip = (
            "Fluid per ETDRS sector, and the share of the sector the scan covers: fluid outside the scan is not "
            "measured, so a sector scanned in part holds at least the fluid shown."
        )
        self.csv_path = FileEdit(label="CSV", mode="w", filter="*.csv")
        self.save_button = PushButton(text="Save CSV")
        self.tiff_path = FileEdit(label="Labels TIFF", mode="w", filter="*.tif")
        self.save_tiff_button = PushButton(text="Save labels TIFF")
        fovea_buttons = Container(
            layout="horizontal", widgets=[self.detect_button, self.cursor_button], labels=False, label="Fovea"
        )
        fovea_buttons.margins = (0, 0, 0, 0)
        self.extend(
            [
                self.labels_layer,
                self.scan,
                *self.spacing_um,
                self.spacing_note,
                self.laterality,
                self.first_bscan,
                self.fovea_bscan,
                self.fovea_column,
                fovea_buttons,
                self.fovea_note,
                self.compute_button,
                self.jobs.progress_widget,
                self.summary_label,
                self.table,
                self.sectors,
            ]
        )
        self.enface = EnfaceSection(on_pick=self._go_to_bscan)  # folded on a small screen: the tab stays short
        self.native.layout().addWidget(self.enface.native)
        self.extend([self.csv_path, self.save_button, self.tiff_path, self.save_tiff_button])
        self._fit_narrow_dock()
        self.labels_layer.changed.connect(self._from_layer)
        for box in self.spacing_um:
            box.changed.connect(self.apply_spacing)
        self._loading = False
        self.compute_button.changed.connect(self.compute)
        self.save_button.changed.connect(self.save_csv)
        self.save_tiff_button.changed.connect(self.save_tiff)
        self.detect_button.changed.connect(self.detect_fovea)
        self.cursor_button.changed.connect(self.fovea_at_cursor)
        napari_viewer.dims.events.current_step.connect(self._follow_bscan)
        self._summary: FluidSummary | None = None
        self._sector_volumes: dict[str, float] | None = None
        self._sectors_scanned: dict[str, float] | None = None
        self._fovea_set = False
        self._fovea_how = ""
        self._from_layer()

    def _fit_narrow_dock(self) -> None:
        """Nothing in the tab asks for more width than a laptop's dock: notes wrap (a refused spacing's message is
        long), drop-downs may be narrower than their longest item (the layer pickers are narrow already)."""
        for label in (self.spacing_note, self.fovea_note):
            wrap_message(label)
        # several lines of its own: wrapped as above it lost the last one; at least SUMMARY_MIN_WIDTH_PX, then wraps
        self.summary_label.native.setWordWrap(True)
        self.summary_label.native.setMinimumWidth(SUMMARY_MIN_WIDTH_PX)
        self.summary_label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        for choice in (self.laterality, self.first_bscan):
            narrow_combo_box(choice)

    # --- what the layers say
    def _from_layer(self, *_) -> None:
        layer = self.labels_layer.value
        if layer is None:
            return
        spacing = spacing_from_layer(layer.metadata, tuple(layer.scale), tuple(layer.units))
        self._loading = True  # the layer's own spacing, not one the user typed
        try:
            for box, value in zip(self.spacing_um, spacing):
                box.value = UNKNOWN if value is None else value * UM_PER_MM
        finally:
            self._loading = False
        self._say_spacing_source(layer_spacing_source(layer.metadata))
        eye = str(layer.metadata.get(META_KEY, {}).get("laterality", "")).upper()
        self.laterality.value = eye if eye in LATERALITIES else "unknown"
        shape = as_volume(layer.data).shape
        self.fovea_bscan.max, self.fovea_column.max = shape[0] - 1, shape[2] - 1
        self.fovea_bscan.value, self.fovea_column.value = (shape[0] - 1) / 2, (shape[2] - 1) / 2
        self.fovea_note.value = "Fovea: scan centre until detected or set at the cursor."
        self._fovea_how = "scan centre"

    # --- the spacing
    def spacing_typed_um(self) -> tuple[float | None, float | None, float | None]:
        return tuple(None if box.value == UNKNOWN else float(box.value) for box in self.spacing_um)  # type: ignore

    def spacing_mm(self) -> tuple[float | None, float | None, float | None]:
        """The spacing typed, in mm, after the plausibility rule (raises :class:`SpacingError`)."""
        return spacing_mm_from_um(self.spacing_typed_um())

    def _say_spacing_source(self, source: str) -> None:
        self.spacing_note.value = f"Spacing: {source}."

    def spacing_layers(self) -> list:
        """The layers a typed spacing belongs to: the labels, the scan, every layer opened from the same file or
        drawn over it (restored corrections, probabilities, differences), and masks of the scan's shape that have
        no spacing (a grader's TIFF) while no other scan of that shape is open: left at pixel size, they no longer
        line up with the scan."""
        chosen = [layer for layer in (self.labels_layer.value, self.scan.value) if layer is not None]
        sources = {scan_file_of(layer) for layer in chosen} - {None}
        same_file = [layer for layer in self._viewer.layers if scan_file_of(layer) in sources and layer not in chosen]
        scan = self.scan.value
        if scan is None:
            return chosen + same_file
        shape, taken = np.shape(scan.data), chosen + same_file
        other_scans = [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, Image) and layer not in taken and np.shape(layer.data) == shape
        ]
        unplaced = [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, Labels)
            and layer not in taken
            and np.shape(layer.data) == shape
            and spacing_from_layer(layer.metadata, tuple(layer.scale), tuple(layer.units)) == (None, None, None)
        ]
        return taken + ([] if other_scans else unplaced)

    def apply_spacing(self, *_) -> bool:
        """Check the spacing typed and, if it passes, apply it to :meth:`spacing_layers`; else say what to type."""
        if self._loading:
            return False
        try:
            spacing = self.spacing_mm()
        except SpacingError as error:
            self.spacing_note.value = f"Not applied: {error}"
            return False
        scan_file = None if self.scan.value is None else scan_file_of(self.scan.value)
        for layer in self.spacing_layers():
            if spacing_from_layer(layer.metadata, tuple(layer.scale), tuple(layer.units)) == spacing:
                continue  # the same as it has: its source stays what it was (a file's spacing typed again)
            update = spacing_layer_update(layer.ndim, layer.metadata, spacing, ENTERED_BY_USER)
            layer.scale, layer.units = update["scale"], update["units"]
            layer.metadata[META_KEY] = update["metadata"][META_KEY]  # in place: the review state stays as it is
            if scan_file_of(layer) is None and scan_file is not None:  # a mask placed on the scan follows it
                layer.metadata[META_KEY][DRAWN_OVER_KEY] = scan_file
        labels = self.labels_layer.value
        self._say_spacing_source(ENTERED_BY_USER if labels is None else layer_spacing_source(labels.metadata))
        return True

    def fovea(self) -> Fovea:
        return Fovea(float(self.fovea_bscan.value), float(self.fovea_column.value), self._fovea_how or "given")

    def detect_fovea(self, *_) -> bool:
        """Start looking for the fovea in the worker (:func:`locate_fovea`; the spin boxes and the note show it when
        found); False, with the reason shown, when it cannot start."""
        if self.scan.value is None:
            self.fovea_note.value = "Choose the scan to detect the fovea in."
            return False
        if self.jobs.busy:
            show_warning("Quantify is busy: wait a moment.")
            return False
        try:
            spacing = self.spacing_mm()
        except SpacingError as error:
            self.fovea_note.value = f"Check the spacing (in micrometres): {error}"
            return False
        self.detect_button.enabled = False
        self.fovea_note.value = "Looking for the fovea..."
        self.jobs.start(
            locate_fovea,
            (as_volume(self.scan.value.data), spacing),  # the scan is read, never written: no copy
            total=1,
            description="octfluid: looking for the fovea",
            on_result=self._on_fovea,
            on_error=lambda error: setattr(self.fovea_note, "value", f"The fovea was not found: {error}"),
            on_finished=lambda stopped: setattr(self.detect_button, "enabled", True),
        )
        return True

    def _on_fovea(self, fovea: Fovea) -> None:
        self.fovea_bscan.value, self.fovea_column.value = fovea.bscan, fovea.column
        self.fovea_note.value = f"Fovea: {fovea.how} at B-scan {fovea.bscan:.0f}, A-scan {fovea.column:.0f}."
        self._fovea_how = fovea.how

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
        self._fovea_how = "set at the cursor"

    # --- figures
    @property
    def summary(self) -> FluidSummary | None:
        """The figures shown, None until Quantify has computed them (in the worker: wait for ``jobs.busy``)."""
        return self._summary

    def compute(self, *_, then: Callable[[], None] | None = None) -> bool:
        """Start computing the figures in the worker (shown by :meth:`_on_quantified`, then ``then()`` is called);
        False, with the reason shown, when they cannot be computed."""
        layer = self.labels_layer.value
        if layer is None:
            self.summary_label.value = "Choose a labels layer."
            return False
        if self.jobs.busy:
            show_warning("Quantify is already running: wait a moment.")
            return False
        try:  # the command line's rule: no absurd volume is ever shown (millimetres typed as micrometres)
            spacing = self.spacing_mm()
        except SpacingError as error:
            self.summary_label.value = f"Check the spacing (in micrometres): {error}"
            show_warning(str(error))
            return False
        labels = np.array(as_volume(layer.data))  # a copy: the user may paint on while the worker reads it
        known = spacing[0] is not None and spacing[2] is not None
        fovea = self.fovea()
        self.compute_button.enabled = False
        self.jobs.start(
            quantify_volume,
            (labels, spacing, fovea, self._laterality(), self.first_bscan.value),
            total=1,
            description="octfluid: quantifying the fluid",
            on_result=lambda quantified: self._on_quantified(quantified, spacing, fovea if known else None, then),
            on_error=lambda error: show_warning(f"Quantify failed: {error}"),
            on_finished=lambda stopped: setattr(self.compute_button, "enabled", True),
        )
        return True

    def _on_quantified(self, quantified: Quantified, spacing, fovea: Fovea | None, then) -> None:
        summary = self._summary = quantified.summary
        areas = summary.area_mm2_per_bscan
        self.table.value = {
            "B-scan": list(range(len(summary.pixels_per_bscan))),
            "fluid pixels": [int(p) for p in summary.pixels_per_bscan],
            "area (mm^2)": (
                ["spacing unknown"] * len(summary.pixels_per_bscan)
                if areas is None
                else [readable_number(a) for a in areas]
            ),
        }
        lines = [f"Fluid: {summary.total_pixels} pixels"]
        if areas is None:
            lines.append("Enter the depth and width spacing to get areas in mm^2.")
        if summary.volume_mm3 is None and len(summary.pixels_per_bscan) == 1:
            lines.append("One B-scan: an area, no volume or ETDRS grid.")  # no B-scan distance to ask for
        elif summary.volume_mm3 is None:
            lines.append("Enter all three spacings to get the volume and the ETDRS grid.")
        else:
            nl, mm3 = readable_number(summary.volume_nl), readable_number(summary.volume_mm3)
            lines.append(f"Volume: {nl} nL ({mm3} mm^3)")
        self.summary_label.value = "\n".join(lines)
        self._show_sectors(quantified)
        self.enface.show_map(quantified.thickness, quantified.thickness_unit, spacing, fovea)
        self._follow_bscan()
        if then is not None:
            then()

    def _laterality(self) -> str | None:
        return None if self.laterality.value == "unknown" else self.laterality.value

    def _show_sectors(self, quantified: Quantified) -> None:
        volumes = self._sector_volumes = quantified.sector_volumes
        scanned = self._sectors_scanned = quantified.sectors_scanned
        if volumes is None:
            self.sectors.value = {"ETDRS sector": [quantified.no_sectors], "fluid (nL)": [""], "scanned": [""]}
            return
        self.sectors.value = {
            "ETDRS sector": list(volumes),
            "fluid (nL)": [readable_number(v * NL_PER_MM3) for v in volumes.values()],
            "scanned": [f"{scanned[name] * 100:.0f} %" if name in (scanned or {}) else "" for name in volumes],
        }

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
        """Save the figures shown, computing them first (in the worker) if Quantify was not pressed yet."""
        if not str(self.csv_path.value).strip() or str(self.csv_path.value) == ".":
            show_warning("Choose where to save the CSV first.")
            return
        summary = self._summary
        if summary is None:
            self.compute(then=self.save_csv)
            return
        path = write_summary_csv(
            self.csv_path.value, summary, self._sector_volumes, self.provenance(summary), self._sectors_scanned
        )
        show_info(f"Saved {path}")

    def provenance(self, summary: FluidSummary) -> QuantifyProvenance:
        """What the figures come from, as the CSV records it."""
        layer, scan = self.labels_layer.value, self.scan.value
        meta = layer.metadata.get(META_KEY, {}) if layer is not None else {}
        scan_meta = scan.metadata.get(META_KEY, {}) if scan is not None else {}
        fovea = self.fovea()
        return QuantifyProvenance(
            labels=str(meta.get("source") or (layer.name if layer is not None else "")),
            scan=str(scan_meta.get("source") or (scan.name if scan is not None else "")),
            model=str(meta.get("model", "")),
            spacing_mm=summary.spacing_mm,
            spacing_source=layer_spacing_source(layer.metadata) if layer is not None else "",
            fovea=fovea_text(fovea.bscan, fovea.column, fovea.how) if self._sector_volumes is not None else "",
            eye=self._laterality() or "",
        )

    def save_tiff(self, *_) -> None:
        layer = self.labels_layer.value
        if layer is None or not str(self.tiff_path.value).strip() or str(self.tiff_path.value) == ".":
            show_warning("Choose the labels and where to save them first.")
            return
        try:
            spacing = self.spacing_mm()
        except SpacingError as error:
            show_warning(f"Check the spacing (in micrometres): {error}")
            return
        meta = {**layer.metadata.get(META_KEY, {}), "laterality": self._laterality() or ""}
        path = write_tiff(self.tiff_path.value, np.asarray(layer.data), spacing, meta, kind="labels")
        show_info(f"Saved {path}")
