"""npe2 writer contributions: labels to TIFF with the scan's spacing, so corrections reopen at the right scale, and
to NIfTI with the spacing, for 3D Slicer, ITK-SNAP and other medical imaging software."""

from __future__ import annotations

from pathlib import Path

from ._layers import META_KEY, spacing_from_layer
from .io import write_tiff


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write a Labels layer; the spacing comes from the layer's octfluid metadata or its micrometre scale."""
    metadata = attributes.get("metadata") or {}
    spacing = spacing_from_layer(metadata, attributes.get("scale"), attributes.get("units"))
    written = write_tiff(path, data, spacing_mm=spacing, meta=metadata.get(META_KEY, {}), kind="labels")
    return [str(written)]


def write_labels_nifti(path: str, data, attributes: dict) -> list[str]:
    """Write a Labels layer as NIfTI (axes and affine: :mod:`napari_octfluid.io.export`); a layer whose spacing is
    unknown is refused with what to do, since a NIfTI file always states its voxel size."""
    from .io.export import ExportError, write_nifti

    metadata = attributes.get("metadata") or {}
    spacing = spacing_from_layer(metadata, attributes.get("scale"), attributes.get("units"))
    try:
        written = write_nifti(path, data, spacing)
    except ExportError as error:
        raise ValueError(
            f"octfluid could not write {Path(path).name}: {error} Save it as octfluid labels TIFF, then run "
            f"octfluid export MASK.tif --spacing Z Y X -o {Path(path).name}."
        ) from None
    return [str(written)]
