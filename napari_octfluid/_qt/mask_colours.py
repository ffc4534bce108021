"""Give a napari labels layer the colours of its role (``napari_octfluid.colours``)."""

from __future__ import annotations

from napari.utils.colormaps import DirectLabelColormap

from ..colours import ROLE_KEY, label_colours


def colour_mask(layer, role: str) -> None:
    """Colour ``layer`` as a mask of ``role`` and record the role in its metadata."""
    layer.colormap = DirectLabelColormap(color_dict=label_colours(role))
    layer.metadata[ROLE_KEY] = role
