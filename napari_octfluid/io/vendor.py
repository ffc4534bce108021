"""Vendor OCT files (Heidelberg .vol/.e2e/HEYEX XML, Topcon .fda) through eyepy, a maintained reader."""

from __future__ import annotations

import logging
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree

from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared
from .volume import OctVolume

# suffix -> (eyepy importer name, what the format is, who makes the device)
VENDOR_FORMATS: dict[str, tuple[str, str, str]] = {
    ".vol": ("import_heyex_vol", "Heidelberg HEYEX .vol", "Heidelberg Engineering"),
    ".e2e": ("import_heyex_e2e", "Heidelberg HEYEX .e2e", "Heidelberg Engineering"),
    ".xml": ("import_heyex_xml", "Heidelberg HEYEX XML export", "Heidelberg Engineering"),
    ".fda": ("import_topcon_fda", "Topcon .fda", "Topcon"),
}

# eyepy holds a .vol's B-scans four times as float32 at its peak (the bytes read, the stacked volume, its copy and
# the intensity transform), and an XML export's B-scans three times as uint8 (the list, the stack, the copy).
VOL_BYTES_PER_VOXEL = 16
XML_COPIES = 3
_VOL_HEADER_BYTES = 2048  # HEYEX .vol: the file header, then the SLO image, then each B-scan's header and pixels
# eyepy's laterality as octfluid's: its .e2e reader gives the ASCII code of R or L (the str of an IntEnum)
_LATERALITY = {"OD": "OD", "R": "OD", "82": "OD", "OS": "OS", "L": "OS", "76": "OS"}  # fmt: skip


class _LayerNamingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "less layers than expected" not in record.getMessage()


@contextmanager
def _without_layer_naming_warning():
    """eyepy warns on every .vol whose retinal-layer segmentation is shorter than it expects ("The volume contains
    less layers than expected"), on stderr, in every batch row: about layers octfluid never reads, so dropped here."""
    logger = logging.getLogger("eyepy.io.HeVolReader")
    dropped = _LayerNamingFilter()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)


def read_vendor(path: str | Path) -> OctVolume:
    """Read a vendor file with eyepy and keep its spacing, laterality and acquisition date."""
    path = Path(path)
    importer_name, file_format, maker = VENDOR_FORMATS[path.suffix.lower()]
    import eyepy  # imported here: it is slow to import and only vendor files need it

    importer: Callable[[Any], Any] = getattr(eyepy, importer_name)
    _check_declared_size(path)
    try:
        with _without_layer_naming_warning():
            eye_volume = importer(path)
    except MemoryError:
        raise
    except Exception as exc:  # eyepy raises ValueError, construct errors, KeyError... for files it can't use
        detail = " ".join(str(exc).split())  # the parser's own message spans lines; the user sees one
        raise OctReadError(
            path,
            f"could not be read as a {file_format} file ({type(exc).__name__}: {detail}).",
            "octfluid reads macular volume and line scans; export other scan patterns as TIFF.",
        ) from exc
    data = eye_volume.data
    spacing, spacing_source = _spacing(path, eye_volume, file_format)
    meta: dict[str, Any] = {
        "source": str(path.resolve()),
        "format": file_format,
        "device": maker,
        "spacing_source": spacing_source,
    }
    eye_meta = eye_volume.meta
    laterality = _LATERALITY.get(str(eye_meta["laterality"] if "laterality" in eye_meta else "").upper())
    if laterality:
        meta["laterality"] = laterality
    visit_date = eye_meta["visit_date"] if "visit_date" in eye_meta else None
    if visit_date:
        meta["acquired"] = str(visit_date)
    if data.ndim == 2:
        data = data[None]
    return OctVolume(data=data, spacing_mm=spacing, meta=meta, source_ndim=3 if data.shape[0] > 1 else 2)


def _spacing(path: Path, eye_volume: Any, file_format: str) -> tuple[tuple, str]:
    """The spacing eyepy read, in mm, and where it came from.

    eyepy gives ``scale_unit 'px'`` (and 1 for every axis) where it decodes no spacing: its .e2e reader does so for
    every file (eyepy 0.21, ``E2ESeriesStructure.get_meta``). The axial scale it lists among an .e2e's B-scan
    metadata (Type10004 ``scale_y``) and its lateral figure (the scan angle times a model eye's 289.6 um per
    degree, marked provisional by eyepy) cannot be checked here without a real .e2e file with a known spacing, so
    the spacing is left unknown: the user enters it in Quantify.
    """
    unit = eye_volume.scale_unit
    if unit == "px":
        return (None, None, None), f"unknown (eyepy reads no spacing from a {file_format} file: enter it in Quantify)"
    if unit not in ("mm", None):
        raise OctReadError(path, f"gives its spacing in {unit!r}, which octfluid does not know.")
    return (eye_volume.scale_z, eye_volume.scale_y, eye_volume.scale_x), file_format


def _check_declared_size(path: Path) -> None:
    """Refuse what the file declares beyond the memory budget, before eyepy reads it: .vol headers give the
    volume's size, XML exports name the image of each B-scan. (.e2e and .fda declare sizes deep inside
    containers that only their readers walk.)"""
    if path.is_dir() or path.suffix.lower() == ".xml":
        _check_xml_export(path)
    elif path.suffix.lower() == ".vol":
        _check_vol(path)


def _check_vol(path: Path) -> None:
    with open(path, "rb") as handle:
        header = handle.read(_VOL_HEADER_BYTES)
    if len(header) < _VOL_HEADER_BYTES:
        return  # not even a whole header: eyepy reports the damage
    width, n_bscans, depth = struct.unpack_from("<III", header, 12)
    slo_width, slo_height = struct.unpack_from("<II", header, 48)
    pixels = array_bytes((n_bscans, depth, width), 4) + array_bytes((slo_height, slo_width), 1)
    declared = describe_declared((n_bscans, depth, width), "float32")
    if _VOL_HEADER_BYTES + pixels > path.stat().st_size:  # the pixels are stored raw: they must be in the file
        raise OctReadError(
            path,
            f"declares {declared} pixels, more than its {path.stat().st_size} bytes can "
            "hold: it is truncated or damaged.",
            "Export it again.",
        )
    check_scan_allocation(
        path, array_bytes((n_bscans, depth, width), VOL_BYTES_PER_VOXEL), f"Reading this scan ({declared})"
    )


def _check_xml_export(path: Path) -> None:
    from .folder import declared_image

    xml = path if path.suffix.lower() == ".xml" else next(iter(sorted(path.glob("*.xml"))), None)
    if xml is None:
        return
    try:
        root = ElementTree.parse(xml).getroot()
    except (ElementTree.ParseError, OSError):
        return  # eyepy reports the damage
    names = [url.text.split("\\")[-1] for url in root.iter("ExamURL") if url.text]
    declared = [image for name in names if (image := declared_image(xml.parent / name)) is not None]
    if not declared:
        return
    needed = XML_COPIES * sum(image.bscan_bytes for image in declared) + max(i.decoding_bytes for i in declared)
    largest = max(declared, key=lambda image: image.bscan_bytes)
    check_scan_allocation(
        path, needed, f"Reading the {len(declared)} images of this export (up to {largest.describe()} each)"
    )
