"""Vendor OCT files (Heidelberg .vol/.e2e/HEYEX XML, Topcon .fda) through eyepy, a maintained reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import OctReadError
from .volume import OctVolume

# suffix -> (eyepy importer name, what the format is, who makes the device)
VENDOR_FORMATS: dict[str, tuple[str, str, str]] = {
    ".vol": ("import_heyex_vol", "Heidelberg HEYEX .vol", "Heidelberg Engineering"),
    ".e2e": ("import_heyex_e2e", "Heidelberg HEYEX .e2e", "Heidelberg Engineering"),
    ".xml": ("import_heyex_xml", "Heidelberg HEYEX XML export", "Heidelberg Engineering"),
    ".fda": ("import_topcon_fda", "Topcon .fda", "Topcon"),
}


def read_vendor(path: str | Path) -> OctVolume:
    """Read a vendor file with eyepy and keep its spacing, laterality and acquisition date."""
    path = Path(path)
    importer_name, file_format, maker = VENDOR_FORMATS[path.suffix.lower()]
    import eyepy  # imported here: it is slow to import and only vendor files need it

    importer: Callable[[Any], Any] = getattr(eyepy, importer_name)
    try:
        eye_volume = importer(path)
    except MemoryError:
        raise
    except Exception as exc:  # eyepy raises ValueError, construct errors, KeyError... for files it can't use
        detail = " ".join(str(exc).split())  # the parser's own message spans lines; the user sees one
        raise OctReadError(path, f"could not be read as a {file_format} file ({type(exc).__name__}: {detail}).",
                           "octfluid reads macular volume and line scans; export other scan patterns as TIFF.") from exc
    data = eye_volume.data
    if eye_volume.scale_unit not in ("mm", None):
        raise OctReadError(path, f"gives its spacing in {eye_volume.scale_unit!r}, which octfluid does not know.")
    spacing = (eye_volume.scale_z, eye_volume.scale_y, eye_volume.scale_x)
    meta: dict[str, Any] = {"source": str(path.resolve()), "format": file_format, "device": maker,
                            "spacing_source": file_format}
    eye_meta = eye_volume.meta
    for key, meta_key in (("laterality", "laterality"), ("visit_date", "acquired")):
        value = eye_meta[key] if key in eye_meta else None
        if value:
            meta[meta_key] = str(value)
    if data.ndim == 2:
        data = data[None]
    return OctVolume(data=data, spacing_mm=spacing, meta=meta, source_ndim=3 if data.shape[0] > 1 else 2)
