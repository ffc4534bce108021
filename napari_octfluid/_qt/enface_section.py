"""The en-face fluid map in a section the user folds and unfolds (``_sections.folded``), so that the Quantify tab
stays short on a laptop screen: folded by default on a screen under ``TALL_SCREEN_PX`` high. The map's canvas (and
matplotlib) is built only when the section is first unfolded; a map computed while folded is drawn then, and the
view draws a map only while it is on screen, once per turn of the event loop (``EnfaceView.show_map``)."""

from __future__ import annotations

from typing import Callable

from qtpy.QtWidgets import QApplication

from ._sections import folded

TALL_SCREEN_PX = 900  # a 1366x768 laptop gives napari about 730 px of height; a 1920x1080 screen about 1040
TITLE = "En-face fluid map"


def screen_is_small() -> bool:
    screen = QApplication.primaryScreen()
    return screen is not None and screen.availableGeometry().height() < TALL_SCREEN_PX


class EnfaceSection:
    """Holds an :class:`~napari_octfluid._qt.enface_view.EnfaceView` once unfolded (``native``: the section to put
    in a layout); keeps the last map and B-scan line it was given while folded."""

    def __init__(self, on_pick: Callable[[int], None] | None = None, unfolded: bool | None = None) -> None:
        self._on_pick = on_pick
        self.view = None  # the EnfaceView, built when first unfolded
        self._map: tuple | None = None
        self._bscan: int | None = None
        self.native = folded(TITLE, [], expanded=False)
        self.native.setToolTip("Fluid thickness seen from the front, with the ETDRS grid; click it to go to a B-scan.")
        self.native.toggled.connect(self._unfolded)
        if not screen_is_small() if unfolded is None else unfolded:
            self.unfold()

    @property
    def is_unfolded(self) -> bool:
        return self.native.isExpanded()

    def unfold(self) -> None:
        self.native.expand(animate=False)

    def fold(self) -> None:
        self.native.collapse(animate=False)

    def _unfolded(self, unfolded: bool) -> None:
        if not unfolded or self.view is not None:
            return
        from .enface_view import EnfaceView  # matplotlib: only for a user who looks at the map

        self.view = EnfaceView(on_pick=self._on_pick)
        self.native.addWidget(self.view)
        self._draw()
        self.native.expand(animate=False)  # again: the section's height now includes the map

    def _draw(self) -> None:
        if self._map is not None:
            self.view.show_map(*self._map)
        if self._bscan is not None:
            self.view.mark_bscan(self._bscan)

    def show_map(self, thickness, unit: str, spacing_mm: tuple, fovea) -> None:
        self._map = (thickness, unit, spacing_mm, fovea)
        if self.view is not None:
            self.view.show_map(*self._map)

    def mark_bscan(self, z: int) -> None:
        self._bscan = z
        if self.view is not None:
            self.view.mark_bscan(z)
