"""The bridge between OctVolume and napari layer data: plain tuples and dicts, no napari import.

napari shows a scan in micrometres (``scale``/``units``); the exact spacing in mm, with its unknown axes,
travels in the layer's metadata so that writers and the quantification never mistake 1.0 for a measurement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io import OctVolume

META_KEY = "octfluid"
REVIEW_KEY = "octfluid_review"  # a labels layer's ReviewState (napari_octfluid.review)
AXIS_LABELS = ("B-scan", "depth", "width")


def layer_kwargs(volume: OctVolume, name: str | None = None) -> dict[str, Any]:
    """napari keyword arguments that give a layer the scan's scale, units, axis names and provenance."""
    keep = slice(1, 3) if volume.source_ndim == 2 else slice(0, 3)
    return {
        "name": name or volume.name,
        "scale": volume.scale_um()[keep],
        "units": volume.units()[keep],
        "axis_labels": AXIS_LABELS[keep],
        "metadata": {
            META_KEY: {**volume.meta, "spacing_mm": list(volume.spacing_mm), "source_ndim": volume.source_ndim}
        },
    }


def layer_data(volume: OctVolume, name: str | None = None) -> tuple[np.ndarray, dict[str, Any], str]:
    """A napari LayerDataTuple: labels for a mask file, an image for a scan."""
    kind = "labels" if volume.is_labels else "image"
    data = volume.as_source_shape(volume.data)
    return data, layer_kwargs(volume, name), kind


def spacing_from_layer(
    metadata: dict[str, Any], scale: tuple[float, ...] | None = None, units: tuple[Any, ...] | None = None
) -> tuple[float | None, float | None, float | None]:
    """The (B-scan, depth, width) spacing in mm of a layer: exact from octfluid's metadata, else from a scale
    whose units are micrometres, else unknown."""
    stored = metadata.get(META_KEY, {}).get("spacing_mm")
    if stored is not None:
        return tuple(stored)  # type: ignore[return-value]
    if scale is None or units is None:
        return (None, None, None)
    spacing = [s * 1e-3 if str(u) in ("micrometer", "um", "µm") else None for s, u in zip(scale, units)]
    return tuple([None] * (3 - len(spacing)) + spacing)  # type: ignore[return-value]
