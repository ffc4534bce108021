"""A folder of B-scan images (PNG, TIFF, BMP, JPEG) read as one volume, in natural file order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._arrays import to_bscan_stack
from .errors import OctReadError
from .volume import OctVolume

BSCAN_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")


def natural_key(path: Path) -> list:
    """Sort ``B2`` before ``B10``, as a person numbers B-scans."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def read_bscan_image(path: str | Path) -> np.ndarray:
    """One B-scan from an image file, as a 2D array."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            from .tiff import read_tiff

            volume = read_tiff(path)
            pixels, source_ndim = volume.data, volume.source_ndim
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
            channel_axis = -1 if image.ndim == 3 and image.shape[-1] in (3, 4) else None
            pixels, source_ndim = to_bscan_stack(image, path, channel_axis)
    except OctReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # imageio's plugins raise many types for damaged files
        raise OctReadError(path, f"is not a readable image ({type(exc).__name__}: {exc}).",
                           "The file may be truncated or corrupt.") from exc
    if source_ndim != 2:
        raise OctReadError(path, f"holds {pixels.shape[0]} B-scans, but a B-scan folder needs one per file.")
    return pixels[0]


def read_folder(folder: str | Path) -> OctVolume:
    """Stack the B-scan images in ``folder`` (sorted naturally) into one volume."""
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in BSCAN_SUFFIXES and not p.name.startswith(".")),
                   key=natural_key)
    if not files:
        raise OctReadError(folder, f"holds no B-scan images ({', '.join(BSCAN_SUFFIXES)}).",
                           "Choose a folder with one B-scan image per file.")
    bscans = [read_bscan_image(files[0])]
    for path in files[1:]:
        bscan = read_bscan_image(path)
        if bscan.shape != bscans[0].shape or bscan.dtype != bscans[0].dtype:
            raise OctReadError(
                folder,
                f"mixes B-scans of different sizes or types: {files[0].name} is {_describe(bscans[0])} "
                f"but {path.name} is {_describe(bscan)}.",
                "Keep only the B-scans of one scan in the folder.",
            )
        bscans.append(bscan)
    meta = {"source": str(folder.resolve()), "format": "folder of B-scan images", "spacing_source": "unknown",
            "files": [p.name for p in files]}
    return OctVolume(data=np.stack(bscans), meta=meta, source_ndim=3)


def _describe(bscan: np.ndarray) -> str:
    return f"{bscan.shape[0]}x{bscan.shape[1]} {bscan.dtype}"
