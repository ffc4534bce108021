"""Layer drop-downs shared by the widgets (napari keeps them in sync with the layer list), and the way the widgets
add layers over a scan."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import napari.layers
from magicgui.widgets import ComboBox, create_widget
from napari.utils.notifications import show_error

from .._layers import META_KEY
from ..colours import ROLE_KEY, label_colours
from ..preprocess import BscanError, check_bscans
from .fit_width import narrow_combo_box


def image_picker(label: str = "Scan") -> ComboBox:
    # as wide as the dock, not as the longest layer name ("duke_subject01 fluid (fine-tuned)" widened every tab)
    return narrow_combo_box(create_widget(annotation=napari.layers.Image, label=label))


def labels_picker(label: str = "Fluid labels") -> ComboBox:
    return narrow_combo_box(create_widget(annotation=napari.layers.Labels, label=label))


def on_grid_of(layer) -> dict:
    """napari keyword arguments that put a new layer on ``layer``'s grid: its scale, units and axis names (a mask,
    a probability or a difference drawn over the scan it was made from)."""
    return {"scale": layer.scale, "units": layer.units, "axis_labels": layer.axis_labels}


DRAWN_OVER_KEY = "drawn_over"  # the scan file a layer was made over (not its own source: nothing autosaves by it)


def from_file_of(layer) -> dict:
    """Metadata naming the file ``layer`` came from, for a layer drawn over it (a probability, a difference):
    Quantify gives a spacing typed for that file to every layer so named, so that overlays keep lining up."""
    source = (layer.metadata.get(META_KEY) or {}).get("source")
    return {META_KEY: {DRAWN_OVER_KEY: source}} if source else {}


def scan_file_of(layer) -> str | None:
    """The scan file a layer was opened from, or drawn over (:func:`from_file_of`)."""
    octfluid = layer.metadata.get(META_KEY) or {}
    return octfluid.get("source") or octfluid.get(DRAWN_OVER_KEY)


@contextmanager
def keeping_selection(viewer):
    """Layers added inside the block are not made the selected layer (napari selects each new layer: that restyles
    its layer buttons and swaps the layer controls shown, 20-60 ms a time on a 2-core CPU, and takes the brush away
    from the labels being corrected). napari 0.9 offers this only as the layer list's ``_activate_on_insert``; where
    it has no such attribute, layers are added as napari adds them."""
    layers = viewer.layers
    before = _private_switch(layers, None)
    if before is None:
        yield
        return
    _private_switch(layers, False)
    try:
        yield
    finally:
        _private_switch(layers, before)


def _private_switch(layers, value: bool | None) -> bool | None:
    """Read (``value`` None) or set the layer list's ``_activate_on_insert``; napari 0.9 warns (FutureWarning) on
    every private access from a plugin, which would reach the user's console at each prediction: silenced here,
    where the access is deliberate and the attribute's absence handled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if value is None:
            return getattr(layers, "_activate_on_insert", None)
        layers._activate_on_insert = value
        return value


def add_mask(viewer, labels, name: str, role: str, source, *, metadata: dict | None = None, select: bool = True):
    """A new labels layer ``name`` on ``source``'s grid, drawn in the colours of ``role`` (``colours.py``) from the
    start: colours set once it is shown would make napari build its colour textures a second time. ``select``: False
    leaves the selected layer selected (:func:`keeping_selection`)."""
    metadata = {**(metadata or {}), ROLE_KEY: role}
    kwargs = {"name": name, "metadata": metadata, "colormap": label_colours(role), **on_grid_of(source)}
    if select:
        return viewer.add_labels(labels, **kwargs)
    with keeping_selection(viewer):
        return viewer.add_labels(labels, **kwargs)


def is_segmentable(layer: napari.layers.Image, action: str) -> bool:
    """Whether ``layer`` holds greyscale B-scans the model can use; if not, a notification says why (``action``:
    e.g. "segment", "train on")."""
    try:
        check_bscans(layer.data, rgb=getattr(layer, "rgb", False))
    except BscanError as error:
        show_error(f"octfluid cannot {action} {layer.name!r}: {error}")
        return False
    return True
