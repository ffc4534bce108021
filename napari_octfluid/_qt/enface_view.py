"""The en-face fluid map (fluid thickness per A-scan, seen from the front) with the ETDRS circles, a line at
the B-scan on screen, and a click that moves the viewer to the B-scan clicked.

Drawing is kept off the paths the user waits on (issue 20: a map redrawn by matplotlib cost ~144 ms of napari's
event loop): a new map is drawn once, by a single-shot timer that coalesces the maps given meanwhile, and only while
the canvas is on screen (a map given while it is hidden is drawn when it is shown); its artists are updated, not
rebuilt; the B-scan line moves by blitting (matplotlib's animation technique: the map's pixels are saved after each
full draw, and a move repaints the line alone over them).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from qtpy.QtCore import QTimer

from ..etdrs import RING_EDGES_MM, Fovea

FONT_SIZE = 7


class EnfaceView(FigureCanvasQTAgg):
    def __init__(self, on_pick: Callable[[int], None] | None = None) -> None:
        self.figure = Figure(figsize=(4, 3))
        super().__init__(self.figure)
        self.setMinimumHeight(240)
        self.axis = self.figure.add_subplot(1, 1, 1)
        self.figure.subplots_adjust(left=0.14, right=0.86, top=0.92, bottom=0.14)
        self.axis.tick_params(labelsize=FONT_SIZE)
        self.axis.set_title("en-face fluid map", fontsize=FONT_SIZE + 1)
        self._image = None
        self._colorbar = None
        self._circles: list[Circle] = []
        self._line = None
        self._dz = 1.0
        self._bscan: int | None = None
        self._pending: tuple | None = None  # the last map given, not drawn yet
        self._background = None  # the figure's pixels without the line, for blitting
        self.renders = 0  # full renderings of a map, for the tests
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._render_pending)
        self._on_pick = on_pick
        self.mpl_connect("button_press_event", self._clicked)
        self.mpl_connect("draw_event", self._save_background)

    @property
    def has_pending_map(self) -> bool:
        return self._pending is not None

    def show_map(self, thickness: np.ndarray, unit: str, spacing_mm: tuple, fovea: Fovea | None) -> None:
        """``thickness[Z, X]``; axes in mm when the B-scan and A-scan spacings are known, else in indices. Drawn
        at the next turn of the event loop if the canvas is on screen, else when it is shown."""
        self._pending = (thickness, unit, spacing_mm, fovea)
        if self.isVisible():
            self._render_timer.start(0)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._pending is not None:
            self._render_timer.start(0)

    def _render_pending(self) -> None:
        if self._pending is None or not self.isVisible():
            return
        pending, self._pending = self._pending, None
        self._render(*pending)

    def _render(self, thickness: np.ndarray, unit: str, spacing_mm: tuple, fovea: Fovea | None) -> None:
        dz, _, dx = spacing_mm
        physical = dz is not None and dx is not None
        self._dz = dz if physical else 1.0
        width = dx if physical else 1.0
        extent = (
            -0.5 * width,
            (thickness.shape[1] - 0.5) * width,
            (thickness.shape[0] - 0.5) * self._dz,
            -0.5 * self._dz,
        )
        if self._image is None:
            self._image = self.axis.imshow(thickness, cmap="magma", extent=extent, interpolation="nearest")
            self._colorbar = self.figure.colorbar(self._image, ax=self.axis, fraction=0.05)
            self._line = self.axis.axhline(0, color="white", linewidth=0.8, linestyle="--", animated=True)
        else:
            self._image.set_data(thickness)
            self._image.set_extent(extent)
        self._image.set_clim(float(thickness.min()), float(thickness.max()))
        self.axis.set_aspect("equal" if physical else "auto")
        self._colorbar.set_label(f"fluid thickness ({unit})", fontsize=FONT_SIZE)
        self._colorbar.ax.tick_params(labelsize=FONT_SIZE)
        self.axis.set_xlabel("width (mm)" if physical else "A-scan", fontsize=FONT_SIZE)
        self.axis.set_ylabel("B-scans (mm)" if physical else "B-scan", fontsize=FONT_SIZE)
        for circle in self._circles:
            circle.remove()
        self._circles = []
        if fovea is not None and physical:
            for radius in RING_EDGES_MM:
                circle = Circle((fovea.column * dx, fovea.bscan * dz), radius, fill=False, color="cyan", linewidth=0.8)
                self._circles.append(self.axis.add_patch(circle))
        self._place_line()
        self.renders += 1
        self.draw_idle()  # the full draw; its draw_event saves the background the line is blitted over

    def mark_bscan(self, z: int) -> None:
        """Move the line to B-scan ``z`` (cheap: the line alone is repainted over the saved map)."""
        self._bscan = z
        if self._line is None:
            return
        self._place_line()
        if self._background is None or not self.isVisible():
            return  # the next full draw shows it
        self.restore_region(self._background)
        self.axis.draw_artist(self._line)
        self.blit(self.figure.bbox)

    def _place_line(self) -> None:
        if self._line is not None and self._bscan is not None:
            self._line.set_ydata([self._bscan * self._dz, self._bscan * self._dz])

    def _save_background(self, _event) -> None:
        if self._line is None:
            return
        self._background = self.copy_from_bbox(self.figure.bbox)
        self.axis.draw_artist(self._line)  # an animated artist is left out of the full draw: painted here

    def _clicked(self, event) -> None:
        if event.inaxes is self.axis and event.ydata is not None and self._on_pick is not None:
            self._on_pick(int(round(event.ydata / self._dz)))
