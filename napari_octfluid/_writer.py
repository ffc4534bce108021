"""npe2 writer contribution: labels to TIFF with the scan's spacing, so corrections reopen at the right scale."""

from __future__ import annotations

from ._layers import META_KEY, spacing_from_layer
from .io import write_tiff


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write a Labels layer; the spacing comes from the layer's octfluid metadata or its micrometre scale."""
    metadata = attributes.get("metadata") or {}
    spacing = spacing_from_layer(metadata, attributes.get("scale"), attributes.get("units"))
    written = write_tiff(path, data, spacing_mm=spacing, meta=metadata.get(META_KEY, {}), kind="labels")
    return [str(written)]
