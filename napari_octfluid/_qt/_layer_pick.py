"""Layer drop-downs shared by the widgets (napari keeps them in sync with the layer list)."""

from __future__ import annotations

import napari.layers
from magicgui.widgets import ComboBox, create_widget


def image_picker(label: str = "Scan") -> ComboBox:
    return create_widget(annotation=napari.layers.Image, label=label)


def labels_picker(label: str = "Fluid labels") -> ComboBox:
    return create_widget(annotation=napari.layers.Labels, label=label)
