"""Choose the reader for a path: by folder or extension, checked against the file's first bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .dicom import DICOM_SUFFIXES, dicom_files_in, is_dicom_file, read_dicom
from .duke_mat import MAT_SUFFIX, read_duke_mat
from .errors import OctReadError
from .folder import BSCAN_SUFFIXES, read_bscan_image, read_folder
from .metaimage import METAIMAGE_SUFFIXES, read_metaimage
from .tiff import read_tiff
from .vendor import VENDOR_FORMATS, read_vendor
from .volume import OctVolume

# First bytes of each format, so a file with the wrong extension gets a message that says what it is.
_MAGIC: dict[bytes, str] = {
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",
    b"MM\x00+": "TIFF",
    b"HSF-OCT": "Heidelberg HEYEX .vol",
    b"CMDb": "Heidelberg HEYEX .e2e",
    b"FOCT": "Topcon .fda",
    b"\x89PNG": "PNG",
    b"BM": "BMP",
    b"\xff\xd8\xff": "JPEG",
    b"<": "XML",
    b"PK\x03\x04": "ZIP",
    b"MATLAB": "MATLAB .mat",  # v5 and v7.3 (HDF5) files both start with this text header
}
_DICOM_MAGIC_OFFSET = 128  # DICOM PS3.10: a 128-byte preamble, then "DICM"
_EXPECTED = {
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".vol": "Heidelberg HEYEX .vol",
    ".e2e": "Heidelberg HEYEX .e2e",
    ".fda": "Topcon .fda",
    ".png": "PNG",
    ".bmp": "BMP",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".xml": "XML",
    ".dcm": "DICOM",
    ".dicom": "DICOM",
    ".mat": "MATLAB .mat",
}

_IMAGE_FORMATS = {"TIFF", "PNG", "BMP", "JPEG"}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {*BSCAN_SUFFIXES, *VENDOR_FORMATS, ".ome.tif", ".ome.tiff", *DICOM_SUFFIXES, *METAIMAGE_SUFFIXES, MAT_SUFFIX}
    )
)


def _read_single_bscan(path: Path) -> OctVolume:
    meta = {"source": str(path.resolve()), "format": path.suffix[1:].upper(), "spacing_source": "unknown"}
    return OctVolume(read_bscan_image(path)[None], meta=meta, source_ndim=2)


def _reader_for(path: Path) -> Callable[[Path], OctVolume]:
    suffix = path.suffix.lower()
    if path.is_dir():
        xml_exports = sorted(path.glob("*.xml"))
        if len(xml_exports) == 1:
            return lambda _: read_vendor(xml_exports[0])
        return read_dicom if dicom_files_in(path) else read_folder
    if suffix in (".tif", ".tiff"):
        return read_tiff
    if suffix in VENDOR_FORMATS:
        return read_vendor
    if suffix in BSCAN_SUFFIXES:
        return _read_single_bscan
    if suffix in DICOM_SUFFIXES:
        return read_dicom
    if suffix in METAIMAGE_SUFFIXES:
        return read_metaimage
    if suffix == MAT_SUFFIX:
        return read_duke_mat
    if path.is_file() and is_dicom_file(path):  # devices name DICOM files IM000001 or by their UID (1.2.840...)
        return read_dicom
    raise OctReadError(
        path,
        f"has an extension octfluid does not read ({suffix or 'none'}).",
        f"Supported: {', '.join(SUPPORTED_SUFFIXES)}, or a folder of B-scan images.",
    )


def can_read(path: str | Path) -> bool:
    """Whether ``path`` looks like something :func:`read_volume` handles (no file is opened)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in SUPPORTED_SUFFIXES


def sniff(path: Path) -> str | None:
    """The format a file's first bytes announce, or None when they match none we know."""
    with open(path, "rb") as handle:
        head = handle.read(_DICOM_MAGIC_OFFSET + 4)
    found = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    # a DICOM preamble may itself hold another format's header (dual-personality DICOM/TIFF files): that one wins
    return found or ("DICOM" if head[_DICOM_MAGIC_OFFSET:] == b"DICM" else None)


def read_volume(path: str | Path) -> OctVolume:
    """Open any scan octfluid reads: TIFF/OME-TIFF, a B-scan image or folder, a vendor file, DICOM OCT (a file or a
    folder of one file per B-scan), MetaImage (.mhd/.mha) or a Duke DME .mat file (its images; its graders' fluid
    through :func:`~napari_octfluid.io.duke_mat.read_duke_mat`).

    Raises
    ------
    OctReadError
        With a message that names the file, the problem and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise OctReadError(path, "does not exist.", "Check the path.")
    reader = _reader_for(path)
    if path.is_file():
        if path.stat().st_size == 0:
            raise OctReadError(path, "is empty (0 bytes).", "The copy or export did not finish: make it again.")
        expected, found = _EXPECTED.get(path.suffix.lower()), sniff(path)
        if expected and found and found != expected and not (expected == "DICOM" and is_dicom_file(path)):
            raise OctReadError(
                path, f"has the extension of a {expected} file but is a {found} file.", "Rename it to its real format."
            )
        # Vendor headers vary between software versions, so only image formats must match their magic.
        if expected in _IMAGE_FORMATS and found is None:
            raise OctReadError(
                path,
                f"has the extension of a {expected} file but does not start like one.",
                "The file may be corrupt: copy or export it again.",
            )
    return reader(path)
