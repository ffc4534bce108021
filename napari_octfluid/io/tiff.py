"""Multi-page TIFF, OME-TIFF and ImageJ TIFF: pixels through tifffile, spacing from whichever tags say it."""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import tifffile

from .._atomic import atomic_path
from ._arrays import to_bscan_stack
from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared, scan_fits_budget
from .volume import OctVolume

# Length units a TIFF may name, in millimetres.
_UNIT_MM = {
    "nm": 1e-6,
    "nanometer": 1e-6,
    # the micro sign (U+00B5), the Greek mu (U+03BC) that some software writes instead, and ImageJ's escape
    "um": 1e-3,
    "\u00b5m": 1e-3,
    "\u03bcm": 1e-3,
    "micron": 1e-3,
    "micrometer": 1e-3,
    "\\u00B5m": 1e-3,
    "mm": 1.0,
    "millimeter": 1.0,
    "cm": 10.0,
    "centimeter": 10.0,
    "m": 1000.0,
    "meter": 1000.0,
}
# TIFF ResolutionUnit 3 = centimetre. 2 = inch is left out, as ImageJ's unit "inch" is above: a resolution in dots
# per inch is how print software (PIL, Photoshop, ImageMagick, Fiji after opening one) states a size on paper, 72
# or 300 dpi whatever the scan, never an OCT's pixel size
_RESOLUTION_UNIT_MM = {3: 10.0}
MEMMAP_BYTES = 256 * 2**20  # uncompressed scans larger than this are memory-mapped, not read into memory
# threads that decode a compressed multi-page TIFF, a page each (tifffile's default is half the cores: one on a
# 2-core laptop). Two halved the decoding of a 25-B-scan deflate scan (46 -> 21 ms), which napari's File > Open
# runs on its interface thread; a burst that short gains nothing from sampling which cores are free
DECODE_WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
OCTFLUID_KEYS = (
    "octfluid_kind",
    "octfluid_spacing_mm",
    "octfluid_spacing_source",
    "laterality",
    "device",
    "model",  # the weights a predicted mask came from: quantify's CSV records them
    "source",
)


def read_tiff(path: str | Path) -> OctVolume:
    """Read a TIFF scan (one B-scan or a stack of B-scans) with the spacing its tags give."""
    path = Path(path)
    try:
        with _tifffile_errors() as complaints, tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels = _map_or_decode(path, series)
            axes = series.axes
            if _pages_as_series(tif.series):
                pixels, axes = _stacked(path, tif.series), "ZYX"
            spacing, spacing_source, extra = _spacing_and_meta(tif, axes)
            if spacing_source != "unknown" and "octfluid_kind" not in extra:  # octfluid's own was checked on entry
                spacing, spacing_source = _plausible(spacing, spacing_source)
            file_format = "OME-TIFF" if tif.is_ome else "ImageJ TIFF" if tif.is_imagej else "TIFF"
        if complaints:  # tifffile reads what it can of a damaged file and only logs the damage
            raise OctReadError(
                path,
                f"is damaged ({complaints[0]}): it holds fewer B-scans than it says.",
                "The file may be truncated: copy or export it again.",
            )
    except OctReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # tifffile and its codecs raise many types for damaged files
        raise OctReadError(
            path,
            f"is not a readable TIFF ({type(exc).__name__}: {exc}).",
            "The file may be truncated or corrupt: copy or export it again.",
        ) from exc
    channel_axis = axes.index("S") if "S" in axes else None
    data, source_ndim = to_bscan_stack(pixels, path, channel_axis)
    meta: dict[str, Any] = {"source": str(path.resolve()), "format": file_format, "spacing_source": spacing_source}
    meta.update(extra)
    return OctVolume(data=data, spacing_mm=spacing, meta=meta, source_ndim=source_ndim)


def _map_or_decode(path: Path, series: tifffile.TiffPageSeries) -> np.ndarray:
    """The series' pixels: memory-mapped where they lie uncompressed and contiguous in the file and are large
    (or too large for the memory budget), otherwise decoded, after checking what the header declares against
    the budget: a few kilobytes of compressed TIFF can declare gigabytes."""
    declared = describe_declared(series.shape, series.dtype)
    if series.dataoffset is not None:  # uncompressed and contiguous: the pixels must all be in the file
        end = series.dataoffset + series.nbytes
        size = path.stat().st_size
        if end > size:
            raise OctReadError(
                path,
                f"declares {declared} pixels ending at byte {end}, but the file has only "
                f"{size} bytes: it is truncated.",
                "Copy or export it again.",
            )
        if series.nbytes >= MEMMAP_BYTES or not scan_fits_budget(path, series.nbytes):
            return tifffile.memmap(path, series=0, mode="r")  # read from disk as needed, never copied
    check_scan_allocation(path, _decoding_bytes(series), f"Decoding this scan ({declared})")
    return series.asarray(maxworkers=DECODE_WORKERS)  # decoded straight into the one array it returns


def _pages_as_series(series: list) -> bool:
    """Whether the file's B-scans are series of one page each, all alike (as ``TiffWriter.write`` once per B-scan
    leaves them, without ImageJ or OME metadata): only the first was read, and the scan became one B-scan."""
    first = series[0]
    return (
        len(series) > 1
        and len(first.shape) == 2
        and all(s.shape == first.shape and s.dtype == first.dtype for s in series)
    )


def _stacked(path: Path, series: list) -> np.ndarray:
    """The B-scans of one-page series as one volume, after checking its size against the memory budget."""
    shape = (len(series), *series[0].shape)
    check_scan_allocation(path, array_bytes(shape, series[0].dtype.itemsize), f"Decoding this scan ({shape})")
    return np.stack([s.asarray() for s in series])


def _decoding_bytes(series: tifffile.TiffPageSeries) -> int:
    """The decoded series plus, for compressed data, a decoded tile or strip for each decoding thread and one for
    the compressed bytes read (tiles are declared separately from the image and may be far larger than it)."""
    if series.dataoffset is not None:  # uncompressed and contiguous: read straight into the array
        return series.nbytes
    chunk_shape = getattr(series.keyframe, "chunks", ()) or ()
    chunk_bytes = array_bytes(chunk_shape, series.dtype.itemsize)
    return series.nbytes + chunk_bytes * (DECODE_WORKERS + 1)


@contextmanager
def _tifffile_errors():
    """Collect what tifffile logs about damage while a file is read."""
    complaints: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: complaints.append(record.getMessage())  # type: ignore[method-assign]
    tiff_logger = logging.getLogger("tifffile")
    tiff_logger.addHandler(handler)
    try:
        yield complaints
    finally:
        tiff_logger.removeHandler(handler)


def _plausible(spacing: tuple, source: str) -> tuple[tuple, str]:
    """The spacing a TIFF states, each implausible axis made unknown (``spacing.plausible_axes``), and where it came
    from, saying what was left out."""
    from ..spacing import plausible_axes

    kept, problems = plausible_axes(spacing)
    if not problems:
        return kept, source
    said = "unknown" if all(value is None for value in kept) else source
    return kept, f"{said}; left unknown, as the file states it: {' '.join(problems)}"


def _spacing_and_meta(tif: tifffile.TiffFile, axes: str) -> tuple[tuple, str, dict[str, Any]]:
    """Spacing (B-scan, depth, width) in mm, where it came from, and octfluid's own keys if present."""
    ij = tif.imagej_metadata or {}
    extra = {k: ij[k] for k in OCTFLUID_KEYS if k in ij and k != "source"}
    if "octfluid_spacing_mm" in ij:  # written by octfluid: exact, including which axes are unknown
        extra.pop("octfluid_spacing_mm")
        # where the spacing first came from (the scan's file, typed by the user...), kept through File > Save
        spacing = tuple(json.loads(ij["octfluid_spacing_mm"]))
        source = extra.pop("octfluid_spacing_source", None) or "octfluid"
        # a spacing nobody knew stays "unknown": "from octfluid" beside "unknown um" read as if octfluid had one
        return spacing, source if any(s is not None for s in spacing) else "unknown", extra
    shaped = (tif.shaped_metadata or [{}])[0] or {}
    extra.update({"bscan_indices": shaped["bscan_indices_0based"]} if "bscan_indices_0based" in shaped else {})
    if tif.is_ome:
        spacing = _spacing_from_ome(tif.ome_metadata or "")
        if any(s is not None for s in spacing):
            return spacing, "OME", extra
    page = tif.pages.first
    if tif.is_imagej:
        unit_mm = _UNIT_MM.get(str(ij.get("unit", "")).strip())
        y, x = (_resolution_mm(page, tag, unit_mm) for tag in ("YResolution", "XResolution"))
        z = float(ij["spacing"]) * unit_mm if unit_mm and "spacing" in ij and "Z" in axes else None
        if any(s is not None for s in (z, y, x)):
            return (z, y, x), "ImageJ", extra
    unit_mm = _RESOLUTION_UNIT_MM.get(int(page.tags.valueof("ResolutionUnit", 1)))
    y, x = (_resolution_mm(page, tag, unit_mm) for tag in ("YResolution", "XResolution"))
    if y is not None or x is not None:
        return (None, y, x), "TIFF resolution tags", extra
    return (None, None, None), "unknown", extra


def _resolution_mm(page: tifffile.TiffPage, tag: str, unit_mm: float | None) -> float | None:
    value = page.tags.valueof(tag)
    if unit_mm is None or not value:
        return None
    pixels_per_unit = value[0] / value[1] if isinstance(value, tuple) else float(value)
    return unit_mm / pixels_per_unit if pixels_per_unit > 0 else None


def _spacing_from_ome(xml: str) -> tuple[float | None, float | None, float | None]:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return (None, None, None)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return (None, None, None)

    def physical(axis: str) -> float | None:
        size = pixels.get(f"PhysicalSize{axis}")
        unit_mm = _UNIT_MM.get(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        return float(size) * unit_mm if size is not None and unit_mm else None

    return physical("Z"), physical("Y"), physical("X")


def write_tiff(
    path: str | Path, data: np.ndarray, spacing_mm=(None, None, None), meta: dict | None = None, kind: str = "labels"
) -> Path:
    """Write a scan or labels as an ImageJ TIFF that keeps the spacing, atomically.

    Fiji reads the spacing from the standard ImageJ tags; octfluid also stores which axes are
    unknown, so reading the file back gives exactly the spacing that was written.
    """
    path = Path(path)
    meta = meta or {}
    z, y, x = spacing_mm
    array = np.asarray(data)
    if array.dtype == np.float64:
        array = array.astype(np.float32)  # ImageJ TIFF holds uint8, uint16 and float32 only
    ij_meta: dict[str, Any] = {
        "axes": "ZYX" if array.ndim == 3 else "YX",
        "unit": "um",
        "octfluid_kind": kind,
        "octfluid_spacing_mm": json.dumps(list(spacing_mm)),
    }
    ij_meta.update({k: str(meta[k]) for k in ("laterality", "device", "model") if meta.get(k)})
    if meta.get("spacing_source"):
        ij_meta["octfluid_spacing_source"] = str(meta["spacing_source"])
    if z is not None and array.ndim == 3:
        ij_meta["spacing"] = z * 1e3
    resolution = (1.0 / (x * 1e3), 1.0 / (y * 1e3)) if x is not None and y is not None else None
    with atomic_path(path) as temporary:  # a crash never leaves a half-written mask where the user saved one
        tifffile.imwrite(temporary, array, imagej=True, resolution=resolution, metadata=ij_meta, compression="zlib")
    return path
