"""The bridge between OctVolume and napari layer data: plain tuples and dicts, no napari import.

napari shows a scan in micrometres (``scale``/``units``); the exact spacing in mm, with its unknown axes,
travels in the layer's metadata so that writers and the quantification never mistake 1.0 for a measurement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io import OctVolume
from .io.sidecar_format import SavedSpacing
from .spacing import SPACING_SOURCE_KEY, UM_PER_MM, UNKNOWN_SOURCE

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


def coloured(layer: tuple, role: str) -> tuple:
    """A labels LayerDataTuple drawn in the colours of its role (``colours.py``; napari 0.9 takes a dict as a
    direct colormap), the role recorded in its metadata."""
    from .colours import ROLE_KEY, label_colours

    data, kwargs, kind = layer
    kwargs["colormap"] = label_colours(role)
    kwargs["metadata"][ROLE_KEY] = role
    return data, kwargs, kind


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


SPACING_RESTORED_FROM_KEY = "spacing_restored_from"  # the sidecar a spacing was restored from, if it was


def layer_spacing_source(metadata: dict[str, Any]) -> str:
    """Where a layer's spacing came from: the file (in the reader's words), "entered by the user", and "restored
    from <scan>.octfluid.npz" when it came back with the corrections."""
    octfluid = metadata.get(META_KEY, {})
    source = str(octfluid.get(SPACING_SOURCE_KEY) or UNKNOWN_SOURCE)
    restored_from = octfluid.get(SPACING_RESTORED_FROM_KEY)
    return f"{source}, restored from {restored_from}" if restored_from else source


def spacing_layer_update(
    ndim: int,
    metadata: dict[str, Any],
    spacing_mm: tuple[float | None, float | None, float | None],
    source: str,
    restored_from: str | None = None,
) -> dict[str, Any]:
    """The napari properties that give a layer of ``ndim`` dimensions this spacing: ``scale`` in micrometres (1
    where unknown), ``units`` and a copy of ``metadata`` whose octfluid entry holds the exact spacing in mm and where
    it came from (what File > Save, the autosave and the quantification read)."""
    keep = slice(3 - ndim, 3)
    scale = tuple(1.0 if s is None else s * UM_PER_MM for s in spacing_mm)[keep]
    units = tuple("pixel" if s is None else "micrometer" for s in spacing_mm)[keep]
    octfluid = {**metadata.get(META_KEY, {}), "spacing_mm": list(spacing_mm), SPACING_SOURCE_KEY: source}
    octfluid.pop(SPACING_RESTORED_FROM_KEY, None)
    if restored_from:
        octfluid[SPACING_RESTORED_FROM_KEY] = restored_from
    return {"scale": scale, "units": units, "metadata": {**metadata, META_KEY: octfluid}}


def saved_spacing(metadata: dict[str, Any]) -> SavedSpacing | None:
    """The spacing of a layer as the autosave keeps it with the corrections; None when no axis is known."""
    spacing = metadata.get(META_KEY, {}).get("spacing_mm")
    if spacing is None or all(s is None for s in spacing):
        return None
    return SavedSpacing(tuple(spacing), str(metadata[META_KEY].get(SPACING_SOURCE_KEY) or UNKNOWN_SOURCE))


def recorded_device(metadata: dict[str, Any]) -> str:
    """The device the scan's file records (DICOM Manufacturer and model, the vendor of a .vol/.e2e), or ""."""
    octfluid = metadata.get(META_KEY, {}) if isinstance(metadata, dict) else {}
    return str(octfluid.get("device") or "") if isinstance(octfluid, dict) else ""
