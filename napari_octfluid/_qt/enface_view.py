"""The en-face fluid map (fluid thickness per A-scan, seen from the front) with the ETDRS circles, a line at
the B-scan on screen, and a click that moves the viewer to the B-scan clicked."""

from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..etdrs import RING_EDGES_MM, Fovea


class EnfaceView(FigureCanvasQTAgg):
    def __init__(self, on_pick: Callable[[int], None] | None = None) -> None:
        self.figure = Figure(figsize=(4, 3))
        super().__init__(self.figure)
        self.setMinimumHeight(240)
        self.axis = self.figure.add_subplot(1, 1, 1)
        self.figure.subplots_adjust(left=0.14, right=0.86, top=0.92, bottom=0.14)
        self._line = None
        self._colorbar = None
        self._on_pick = on_pick
        self.mpl_connect("button_press_event", self._clicked)

    def show_map(self, thickness: np.ndarray, unit: str, spacing_mm: tuple, fovea: Fovea | None) -> None:
        """``thickness[Z, X]``; axes in mm when the B-scan and A-scan spacings are known, else in indices."""
        self.axis.clear()
        dz, _, dx = spacing_mm
        physical = dz is not None and dx is not None
        self._dz = dz if physical else 1.0
        extent = (
            (
                -0.5 * (dx or 1),
                (thickness.shape[1] - 0.5) * (dx or 1),
                (thickness.shape[0] - 0.5) * self._dz,
                -0.5 * self._dz,
            )
            if physical
            else None
        )
        image = self.axis.imshow(
            thickness, cmap="magma", aspect="auto" if not physical else "equal", extent=extent, interpolation="nearest"
        )
        if self._colorbar is None:
            self._colorbar = self.figure.colorbar(image, ax=self.axis, fraction=0.05)
        else:
            self._colorbar.update_normal(image)
        self._colorbar.set_label(f"fluid thickness ({unit})", fontsize=7)
        self.axis.set_xlabel("width (mm)" if physical else "A-scan", fontsize=7)
        self.axis.set_ylabel("B-scans (mm)" if physical else "B-scan", fontsize=7)
        self.axis.tick_params(labelsize=7)
        self.axis.set_title("en-face fluid map", fontsize=8)
        if fovea is not None and physical:
            for radius in RING_EDGES_MM:
                self.axis.add_patch(
                    Circle((fovea.column * dx, fovea.bscan * dz), radius, fill=False, color="cyan", linewidth=0.8)
                )
        self._line = self.axis.axhline(0, color="white", linewidth=0.8, linestyle="--")
        self.draw_idle()

    def mark_bscan(self, z: int) -> None:
        """Move the line to B-scan ``z`` (cheap: no re-rendering of the map)."""
        if self._line is not None:
            self._line.set_ydata([z * self._dz, z * self._dz])
            self.draw_idle()

    def _clicked(self, event) -> None:
        if event.inaxes is self.axis and event.ydata is not None and self._on_pick is not None:
            self._on_pick(int(round(event.ydata / self._dz)))
