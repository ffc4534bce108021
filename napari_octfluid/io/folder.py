"""A folder of B-scan images (PNG, TIFF, BMP, JPEG) read as one volume, in natural file order.

Every image's header is read first (its declared size costs nothing to read) and the folder's total checked
against octfluid's memory budget before any pixel is decoded: a megabyte of PNGs can declare gigabytes. The
volume is then filled one B-scan at a time into a single array, never held twice.
"""

from __future__ import annotations

import re
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._arrays import to_bscan_stack
from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared
from .volume import OctVolume

BSCAN_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")
# Decoding through Pillow holds the image three times at its peak: Pillow's own buffer, the bytes it exports
# and the array made from them (measured: 180 MB for a 61 MB PNG).
PILLOW_DECODE_COPIES = 3
# PNG colour type -> samples per pixel as decoded; a palette image is expanded to RGBA at most
_PNG_SAMPLES = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow mode -> bytes per sample; a palette ("P") counts as RGBA, what it may be expanded to
_PILLOW_SAMPLE_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}

_pillow_lock = threading.RLock()


def natural_key(path: Path) -> list:
    """Sort ``B2`` before ``B10``, as a person numbers B-scans."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


@dataclass(frozen=True)
class DeclaredImage:
    """What an image's header declares, read without decoding a pixel."""

    shape: tuple[int, ...]  # as decoded: (height, width) or (height, width, samples), a TIFF as its series
    dtype: np.dtype
    bscan_bytes: int  # one grey B-scan as the volume holds it
    decoding_bytes: int  # the peak of decoding it

    def describe(self) -> str:
        return describe_declared(self.shape, self.dtype)


def declared_image(path: str | Path) -> DeclaredImage | None:
    """The size the image's header declares; None when the header cannot be read (decoding then says what is
    wrong with the file)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return _declared_tiff(path)
        with open(path, "rb") as handle:
            head = handle.read(33)
        if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR" and head[25] in _PNG_SAMPLES:
            return _declared_png(head)
        return _declared_by_pillow(path)  # other formats, and PNGs laid out unusually: as the decoder sees them
    except MemoryError:
        raise
    except Exception:  # damage the decoder, which is the same library, meets too and names
        return None


def read_bscan_image(path: str | Path) -> np.ndarray:
    """One B-scan from an image file, as a 2D array; its declared size is checked against the memory budget
    before it is decoded."""
    path = Path(path)
    declared = declared_image(path)
    if declared is not None:
        check_scan_allocation(path, declared.decoding_bytes, f"Decoding this B-scan ({declared.describe()})")
    return _decode_bscan(path)


def read_folder(folder: str | Path) -> OctVolume:
    """Stack the B-scan images in ``folder`` (sorted naturally) into one volume."""
    folder = Path(folder)
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in BSCAN_SUFFIXES and not p.name.startswith(".")),
        key=natural_key,
    )
    if not files:
        raise OctReadError(
            folder,
            f"holds no B-scan images ({', '.join(BSCAN_SUFFIXES)}).",
            "Choose a folder with one B-scan image per file.",
        )
    _check_declared_sizes(folder, files)
    first = _decode_bscan(files[0])
    data = np.empty((len(files), *first.shape), first.dtype)  # the one array the B-scans are decoded into
    data[0] = first
    del first
    for index, path in enumerate(files[1:], start=1):
        bscan = _decode_bscan(path)
        if bscan.shape != data.shape[1:] or bscan.dtype != data.dtype:
            raise OctReadError(
                folder,
                f"mixes B-scans of different sizes or types: {files[0].name} is {_describe(data[0])} "
                f"but {path.name} is {_describe(bscan)}.",
                "Keep only the B-scans of one scan in the folder.",
            )
        data[index] = bscan
    meta = {
        "source": str(folder.resolve()),
        "format": "folder of B-scan images",
        "spacing_source": "unknown",
        "files": [p.name for p in files],
    }
    return OctVolume(data=data, meta=meta, source_ndim=3)


def _check_declared_sizes(folder: Path, files: list[Path]) -> None:
    """Refuse, before any pixel is decoded, a folder whose headers declare more than the memory budget in all:
    the volume, plus decoding its largest image."""
    declared = [found for path in files if (found := declared_image(path)) is not None]
    if not declared:
        return
    needed = sum(image.bscan_bytes for image in declared) + max(image.decoding_bytes for image in declared)
    largest = max(declared, key=lambda image: image.bscan_bytes)
    check_scan_allocation(folder, needed, f"Reading these {len(files)} B-scans (up to {largest.describe()} each)")


def _decode_bscan(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            from .tiff import read_tiff

            volume = read_tiff(path)  # checks the TIFF's declared size itself
            pixels, source_ndim = volume.data, volume.source_ndim
        else:
            import imageio.v3 as iio

            with pillow_limit_replaced_by_budget():
                image = iio.imread(path)
            channel_axis = -1 if image.ndim == 3 and image.shape[-1] in (3, 4) else None
            pixels, source_ndim = to_bscan_stack(image, path, channel_axis)
    except OctReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # imageio's plugins raise many types for damaged files
        raise OctReadError(
            path, f"is not a readable image ({type(exc).__name__}: {exc}).", "The file may be truncated or corrupt."
        ) from exc
    if source_ndim != 2:
        raise OctReadError(path, f"holds {pixels.shape[0]} B-scans, but a B-scan folder needs one per file.")
    return pixels[0]


@contextmanager
def pillow_limit_replaced_by_budget():
    """Lift Pillow's decompression-bomb limit while octfluid opens an image whose declared size its own budget
    has checked: Pillow's warning would reach the user raw, and its error refuse images the budget allows.

    Pillow's limit is a module global, so the change is made under a lock and undone at once; octfluid's own
    reads wait for each other here.
    """
    from PIL import Image

    with _pillow_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _declared_png(head: bytes) -> DeclaredImage:
    """From the IHDR chunk, which the PNG standard puts first: width, height, bit depth, colour type."""
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    return _declared_picture(height, width, _PNG_SAMPLES[colour_type], 2 if bit_depth == 16 else 1)


def _declared_by_pillow(path: Path) -> DeclaredImage:
    from PIL import Image

    with pillow_limit_replaced_by_budget(), Image.open(path) as image:  # opening reads the header only
        width, height = image.size
        samples = 4 if image.mode == "P" else len(image.getbands())
        itemsize = _PILLOW_SAMPLE_BYTES.get(image.mode, 1)
    return _declared_picture(height, width, samples, itemsize)


def _declared_picture(height: int, width: int, samples: int, itemsize: int) -> DeclaredImage:
    dtype = np.dtype({1: np.uint8, 2: np.uint16, 4: np.float32}[itemsize])
    shape = (height, width) if samples == 1 else (height, width, samples)
    return DeclaredImage(
        shape, dtype, array_bytes((height, width), itemsize), PILLOW_DECODE_COPIES * array_bytes(shape, itemsize)
    )


def _declared_tiff(path: Path) -> DeclaredImage:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype, axes = tuple(series.shape), series.dtype, series.axes
    grey = tuple(size for size, axis in zip(shape, axes) if axis != "S")
    return DeclaredImage(shape, dtype, array_bytes(grey, dtype.itemsize), array_bytes(shape, dtype.itemsize))


def _describe(bscan: np.ndarray) -> str:
    return f"{bscan.shape[0]}x{bscan.shape[1]} {bscan.dtype}"
