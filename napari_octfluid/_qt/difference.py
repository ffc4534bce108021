"""The difference overlay of the Review tab: a Labels layer ``<mask> vs <reference>`` showing where the reviewed mask
has fluid the chosen reference has not (false positive) and where it misses the reference's fluid (false negative),
in the colours of ``colours.DIFFERENCE``, with the counts for the B-scan on screen.

The difference is computed by the core (``labels.difference_labels`` and ``labels.difference_counts``); this widget
keeps it current cheaply: a brush stroke or fill recomputes the B-scans it touched, a redraw (an undo, a redo, a
slider move) only the B-scan on screen, replaced data the whole volume.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, Container, Label
from qtpy.QtCore import QTimer

from ..colours import DIFFERENCE, REFERENCE, ROLE_KEY
from ..labels import difference_counts, difference_labels
from ._layer_pick import from_file_of, labels_picker, on_grid_of
from .fit_width import narrow_combo_box, wrap_message
from .mask_colours import colour_mask
from .review_tracking import bscan_on_screen, touched_bscans, unwrapped


def is_difference(layer) -> bool:
    return layer.metadata.get(ROLE_KEY) == DIFFERENCE


def difference_layer_name(mask, reference) -> str:
    return f"{mask.name} vs {reference.name}"


class DifferenceOverlay(Container):
    """A reference Labels layer to compare with, a check box that adds (or removes) the difference layer, and the
    false positive / false negative pixels of the B-scan on screen. ``mask`` is the layer under review (set by the
    Review tab)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=False)
        self._viewer = napari_viewer
        self.reference = labels_picker("Compare with")
        self.show_difference = CheckBox(text="Show where the labels differ from it", value=False)
        self.show_difference.tooltip = (
            "Adds a layer '<labels> vs <reference>': false positive (fluid only in the reviewed labels) and false "
            "negative (fluid only in the reference) pixels; the reference's unannotated pixels (255) never count."
        )
        self.counts = Label(value="")
        wrap_message(self.counts)
        self.extend([Container(widgets=[self.reference]), self.show_difference, self.counts])
        narrow_combo_box(self.reference)
        self.mask = None
        self.layer = None  # the difference layer while it is shown
        self._pair: tuple = (None, None)  # the (mask, reference) it shows
        self._starting = False
        self._watched: list = []  # (event emitter, callback) pairs connected while the difference is shown
        self._touched: set[int] = set()
        self.show_difference.changed.connect(self._on_show)
        self.reference.changed.connect(self._on_reference)
        napari_viewer.dims.events.current_step.connect(self._on_step)
        napari_viewer.layers.events.removed.connect(self._on_removed)

    # --- what is compared -----------------------------------------------------------------------------------------
    def set_mask(self, layer) -> None:
        """Compare ``layer`` (the Review tab's labels) from now on; unless the user chose another, with a reference
        mask of the same scan (an expert's, read from a file) or any other labels of the same shape."""
        self.mask = None if layer is None else unwrapped(layer)
        self._choose_reference()
        self._restart()

    def reset_choices(self, *_) -> None:
        """napari's layers changed: the drop-down lists them, and a reference is chosen if there was none."""
        super().reset_choices()
        if self._choose_reference():
            self._restart()

    def _choose_reference(self) -> bool:
        """Choose a reference if none is chosen (or the labels under review are): a reference mask of the same scan
        first (an expert's, read from a file), else any other labels of the same shape. True if it chose one."""
        reference = self.reference.value
        if self.mask is None or (reference is not None and unwrapped(reference) is not self.mask):
            return False
        candidates = [
            choice
            for choice in self.reference.choices
            if unwrapped(choice) is not self.mask
            and not is_difference(choice)
            and np.shape(choice.data) == np.shape(self.mask.data)
        ]
        candidates.sort(key=lambda choice: choice.metadata.get(ROLE_KEY) != REFERENCE)  # references first
        if not candidates:
            return False
        with self.reference.changed.blocked():
            self.reference.value = candidates[0]
        return True

    def _on_reference(self, *_) -> None:
        self._restart()

    def _on_show(self, show: bool) -> None:
        self._restart() if show else self._stop()

    def _restart(self) -> None:
        """Show the difference of the chosen pair (if asked to); nothing to do when it shows that pair already
        (napari resets the drop-downs whenever a layer is added, the difference layer included)."""
        reference = self.reference.value
        pair = (self.mask, None if reference is None else unwrapped(reference))
        if self._starting or (self.layer is not None and self.show_difference.value and pair == self._pair):
            return
        self._stop()
        if self.show_difference.value:
            self._start()
        else:
            self.counts.value = ""

    def _comparable(self) -> bool:
        """Whether the mask and the reference can be compared; if not, the counts line says why."""
        mask, reference = self.mask, self.reference.value
        if mask is None or reference is None:
            self.counts.value = "Choose the labels to review and a reference to compare them with."
            return False
        reference = unwrapped(reference)
        if mask not in self._viewer.layers or reference not in self._viewer.layers:
            self.counts.value = "Choose the labels to review and a reference to compare them with."
            return False
        if reference is mask:
            self.counts.value = "Choose another layer to compare with: these are the labels under review."
            return False
        if is_difference(mask) or is_difference(reference):
            self.counts.value = "A difference layer is not compared: choose the labels it was made from."
            return False
        if np.shape(mask.data) != np.shape(reference.data):
            self.counts.value = (
                f"{reference.name!r} {np.shape(reference.data)} and {mask.name!r} {np.shape(mask.data)} differ in "
                f"shape: they are not labels of the same scan."
            )
            return False
        return True

    def _start(self) -> None:
        if not self._comparable():
            return
        self._starting = True  # adding the layer resets the drop-downs, which must not start another meanwhile
        try:
            self._add_layer()
        finally:
            self._starting = False

    def _add_layer(self) -> None:
        mask, reference = self.mask, unwrapped(self.reference.value)
        difference = difference_labels(mask.data, reference.data)
        name = difference_layer_name(mask, reference)
        if name in self._viewer.layers:
            self.layer = unwrapped(self._viewer.layers[name])
            self.layer.data = difference
        else:
            self.layer = unwrapped(
                self._viewer.add_labels(
                    difference,
                    name=name,
                    translate=mask.translate,
                    **on_grid_of(mask),
                    opacity=0.8,
                    # the role at once: adding it resets the drop-downs, which skip it; the file, for the spacing
                    metadata={ROLE_KEY: DIFFERENCE, **from_file_of(mask)},
                )
            )
        self._pair = (mask, reference)
        colour_mask(self.layer, DIFFERENCE)
        self.layer.editable = False  # it follows the two masks; an edit here would be lost at the next update
        self._viewer.layers.selection.active = self._viewer.layers[mask.name]  # the brush stays on the mask
        for layer in (mask, reference):
            self._connect(layer.events.paint, self._on_paint)
            self._connect(layer.events.data, self._on_data)
            self._connect(layer.events.set_data, self._on_redraw)
        self._show_counts()

    def _connect(self, emitter, callback) -> None:
        emitter.connect(callback)
        self._watched.append((emitter, callback))

    def _stop(self) -> None:
        for emitter, callback in self._watched:
            emitter.disconnect(callback)
        self._watched = []
        layer, self.layer = self.layer, None
        if layer is not None and layer in self._viewer.layers:
            self._viewer.layers.remove(layer)

    def _on_removed(self, event) -> None:
        removed = unwrapped(event.value)
        if removed is self.layer:  # the user deleted the difference layer: stop updating it
            self.layer = None
            self.show_difference.value = False
        elif removed is self.mask or removed is unwrapped(self.reference.value):
            self._stop()

    # --- keeping it current ---------------------------------------------------------------------------------------
    def _on_paint(self, event) -> None:
        # napari announces a programmatic paint before it writes the data: look once control returns
        first = not self._touched
        self._touched |= touched_bscans(event.value, np.ndim(self.mask.data))
        if first:
            QTimer.singleShot(0, self._update_touched)

    def _update_touched(self) -> None:
        touched, self._touched = sorted(self._touched), set()
        self.update_bscans(touched)

    def _on_redraw(self, *_) -> None:
        self.update_bscans([self.bscan()])

    def _on_step(self, *_) -> None:
        if self.layer is not None:
            self.update_bscans([self.bscan()])

    def _on_data(self, *_) -> None:
        """New labels (a prediction, a script), maybe of another shape: the whole volume again."""
        if not self._comparable():
            self._stop()
            return
        self.layer.data = difference_labels(self.mask.data, unwrapped(self.reference.value).data)
        self._show_counts()

    def bscan(self) -> int:
        return bscan_on_screen(self._viewer, self.mask.data) if self.mask is not None else 0

    def update_bscans(self, bscans) -> None:
        """Recompute the difference on ``bscans`` (all of it for a single B-scan's labels), redrawing only when it
        changed."""
        if self.layer is None:
            return
        mask, reference = self.mask.data, unwrapped(self.reference.value).data
        changed = False
        if np.ndim(mask) == 2:
            difference = difference_labels(mask, reference)
            changed = not np.array_equal(difference, self.layer.data)
            self.layer.data[...] = difference
        else:
            for z in bscans:
                difference = difference_labels(mask[z], reference[z])
                if not np.array_equal(difference, self.layer.data[z]):
                    self.layer.data[z] = difference
                    changed = True
        if changed:
            self.layer.refresh()
        self._show_counts()

    def _show_counts(self) -> None:
        if self.layer is None:
            return
        z = self.bscan()
        on_screen = self.layer.data if np.ndim(self.layer.data) == 2 else self.layer.data[z]
        false_positive, false_negative = difference_counts(on_screen)
        self.counts.value = f"B-scan {z}: {false_positive:,} false positive, {false_negative:,} false negative pixels"
