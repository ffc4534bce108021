"""Layer drop-downs shared by the widgets (napari keeps them in sync with the layer list)."""

from __future__ import annotations

import napari.layers
from magicgui.widgets import ComboBox, create_widget
from napari.utils.notifications import show_error

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


def is_segmentable(layer: napari.layers.Image, action: str) -> bool:
    """Whether ``layer`` holds greyscale B-scans the model can use; if not, a notification says why (``action``:
    e.g. "segment", "train on")."""
    try:
        check_bscans(layer.data, rgb=getattr(layer, "rgb", False))
    except BscanError as error:
        show_error(f"octfluid cannot {action} {layer.name!r}: {error}")
        return False
    return True
