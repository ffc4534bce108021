"""MetaImage (.mhd header + raw data file, or a single .mha), the format of the RETOUCH challenge's OCT volumes and
reference labels (Bogunovic et al., "RETOUCH: The Retinal OCT Fluid Detection and Segmentation Benchmark and
Challenge", IEEE TMI 38(8), 2019).

The header is ``Key = Value`` text (ITK's MetaIO, https://itk.org/Wiki/ITK/MetaIO/Documentation) ending with
ElementDataFile; it is parsed here because no installed library reads it (SimpleITK, the reference reader, is a
50 MB wheel). DimSize and ElementSpacing list the axes fastest first, x y z: octfluid's volumes are [Z, Y, X] =
[B-scan, depth, width], so both are reversed. MetaImage states no unit; ITK's convention, and RETOUCH's headers
(e.g. 0.0117 0.0020 0.0469 for Cirrus), are millimetres.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

from ._arrays import to_bscan_stack
from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared, scan_fits_budget
from .volume import OctVolume

METAIMAGE_SUFFIXES = (".mhd", ".mha")
# MetaIO's element types; MET_LONG and MET_ULONG are 32-bit there, the 64-bit ones are MET_(U)LONG_LONG
ELEMENT_TYPES = {
    "MET_UCHAR": "u1",
    "MET_CHAR": "i1",
    "MET_USHORT": "u2",
    "MET_SHORT": "i2",
    "MET_UINT": "u4",
    "MET_INT": "i4",
    "MET_ULONG": "u4",
    "MET_LONG": "i4",
    "MET_ULONG_LONG": "u8",
    "MET_LONG_LONG": "i8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}
MAX_HEADER_BYTES = 64 * 2**10  # a header is a few hundred bytes; beyond this the file is not a MetaImage
MEMMAP_BYTES = 256 * 2**20  # as for TIFF: larger uncompressed data is memory-mapped, not read into memory
_TRUE = ("true", "1", "yes")


def read_metaimage(path: str | Path) -> OctVolume:
    """Read a MetaImage volume or B-scan with the spacing its header gives (mm, reordered to B-scan, depth,
    width)."""
    path = Path(path)
    header, data_offset = _read_header(path)
    sizes = _integers(path, header, "DimSize")
    n_dims = int(header.get("ndims", len(sizes)))
    if n_dims not in (2, 3) or len(sizes) != n_dims or min(sizes) < 1:
        raise OctReadError(
            path,
            f"declares {n_dims} dimensions of sizes {sizes}; octfluid reads one B-scan (2D) or a volume (3D).",
        )
    element_type = header.get("elementtype", "").upper()
    if element_type not in ELEMENT_TYPES:
        raise OctReadError(
            path, f"stores ElementType {element_type or 'none'}, which octfluid does not read.", "Save it as TIFF."
        )
    big_endian = any(header.get(key, "").lower() in _TRUE for key in ("binarydatabyteordermsb", "elementbyteordermsb"))
    dtype = np.dtype(ELEMENT_TYPES[element_type]).newbyteorder(">" if big_endian else "<")
    channels = int(header.get("elementnumberofchannels", "1"))
    shape = tuple(reversed(sizes)) + ((channels,) if channels > 1 else ())
    pixels = _read_pixels(path, header, data_offset, shape, dtype)
    data, source_ndim = to_bscan_stack(pixels, path, channel_axis=-1 if channels > 1 else None)
    spacing = _spacing(path, header, n_dims)
    known = any(s is not None for s in spacing)
    meta = {
        "source": str(path.resolve()),
        "format": "MetaImage",
        "spacing_source": "MetaImage ElementSpacing (mm)" if known else "unknown",
    }
    return OctVolume(data=data, spacing_mm=spacing, meta=meta, source_ndim=source_ndim)


def _read_header(path: Path) -> tuple[dict[str, str], int]:
    """The header's keys (lower case) and the byte offset just after it (where a .mha's data starts)."""
    header: dict[str, str] = {}
    with open(path, "rb") as handle:
        while handle.tell() < MAX_HEADER_BYTES:
            line = handle.readline(MAX_HEADER_BYTES)
            if not line:
                break
            key, sep, value = line.decode("latin-1").partition("=")
            if not sep:
                if line.strip():
                    break  # binary data or another format: the check below says so
                continue
            header[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":  # MetaIO: always the last key
                return header, handle.tell()
    raise OctReadError(
        path, "is not a MetaImage header (no ElementDataFile line).", "Choose the .mhd or .mha file of the scan."
    )


def _integers(path: Path, header: dict[str, str], key: str) -> list[int]:
    try:
        return [int(value) for value in header.get(key.lower(), "").split()]
    except ValueError:
        raise OctReadError(path, f"has a {key} that is not whole numbers: {header[key.lower()]!r}.") from None


def _spacing(path: Path, header: dict[str, str], n_dims: int) -> tuple[float | None, float | None, float | None]:
    text = header.get("elementspacing") or header.get("elementsize") or ""
    try:
        values = [float(value) for value in text.split()]
    except ValueError:
        values = []
    if len(values) != n_dims:
        return (None, None, None)
    ordered = list(reversed(values))  # x y z -> z y x
    return tuple([None] * (3 - n_dims) + ordered)  # type: ignore[return-value]


def _data_source(path: Path, header: dict[str, str], data_offset: int) -> tuple[Path, int | None]:
    """The file holding the pixels and where they start (None: at its end, HeaderSize = -1)."""
    name = header["elementdatafile"]
    if name.upper() == "LOCAL":
        return path, data_offset
    if name.upper().startswith("LIST") or "%" in name:
        raise OctReadError(
            path,
            f"keeps its pixels in several files (ElementDataFile = {name}), which octfluid does not read.",
            "Save the volume as one .mha or .mhd + .raw.",
        )
    skip = int(header.get("headersize", "0") or 0)
    return path.parent / name, (None if skip == -1 else max(skip, 0))


def _read_pixels(
    path: Path, header: dict[str, str], data_offset: int, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    data_file, offset = _data_source(path, header, data_offset)
    if not data_file.is_file():
        raise OctReadError(
            path, f"keeps its pixels in {data_file.name}, which is missing.", "Keep the .raw beside the .mhd."
        )
    nbytes = array_bytes(shape, dtype.itemsize)
    size = data_file.stat().st_size
    declared = describe_declared(shape, dtype)
    if header.get("compresseddata", "").lower() in _TRUE:
        return _inflate(path, data_file, offset, size, nbytes, shape, dtype, header)
    if offset is None:
        offset = size - nbytes
    if offset < 0 or offset + nbytes > size:
        raise OctReadError(
            path,
            f"declares {declared} pixels, more than the {size} bytes of {data_file.name} hold: it is truncated.",
            "Copy or export it again.",
        )
    native = _is_native(dtype)
    if native and (nbytes >= MEMMAP_BYTES or not scan_fits_budget(path, nbytes)):
        return np.memmap(data_file, dtype=dtype, mode="r", offset=offset, shape=shape)  # read from disk as needed
    check_scan_allocation(path, nbytes, f"Reading this scan ({declared})")
    pixels = np.fromfile(data_file, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
    return pixels if native else pixels.byteswap(inplace=True).view(dtype.newbyteorder("="))


def _inflate(
    path: Path,
    data_file: Path,
    offset: int | None,
    size: int,
    nbytes: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    header: dict[str, str],
) -> np.ndarray:
    """zlib-compressed pixels (CompressedData = True), inflated no further than the declared size: a few kilobytes
    can inflate to gigabytes."""
    declared_size = int(header.get("compresseddatasize", "0") or 0)
    if offset is None:  # HeaderSize = -1: the compressed bytes end the file
        offset = size - declared_size if declared_size else 0
    compressed_size = declared_size or size - offset
    # the compressed bytes, the inflated bytes and the writable array made from them
    needed = 2 * nbytes + compressed_size
    check_scan_allocation(path, needed, f"Decompressing this scan ({describe_declared(shape, dtype)})")
    with open(data_file, "rb") as handle:
        handle.seek(offset)
        compressed = handle.read(compressed_size)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, nbytes)
    except zlib.error as exc:
        raise OctReadError(path, f"holds compressed pixels that are damaged ({exc}).", "Export it again.") from None
    del compressed
    if len(raw) != nbytes:
        raise OctReadError(
            path,
            f"holds {len(raw)} bytes of pixels once decompressed, where its header declares {nbytes}: it is "
            "truncated or damaged.",
            "Export it again.",
        )
    pixels = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)  # bytearray: writable, for napari's painting
    del raw
    return pixels if _is_native(dtype) else pixels.byteswap(inplace=True).view(dtype.newbyteorder("="))


def _is_native(dtype: np.dtype) -> bool:
    return dtype.byteorder in ("=", "|") or (dtype.byteorder == "<") == (sys.byteorder == "little")
