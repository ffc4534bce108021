"""DICOM OCT (Ophthalmic Tomography Image Storage, the export of Zeiss Cirrus, Topcon, Heidelberg and others) through
pydicom: one multi-frame file, or a folder with one file per B-scan.

The spacing comes from the Pixel Measures functional group (DICOM PS3.3 C.7.6.16.2.1) of the Shared or Per-frame
Functional Groups: Pixel Spacing is (row spacing, column spacing) in mm, i.e. (depth, width). The distance between
B-scans is taken, in this order, from the frames' positions (Plane Position (Patient), PS3.3 C.7.6.16.2.3, along the
normal of Plane Orientation (Patient), the one attribute DICOM defines for it), from Spacing Between Slices, or from
Slice Thickness, which OCT exporters fill with the B-scan distance (e.g. OCT-Converter's OPT writer). Where the file
gives none of these (a Plane Position (Ophthalmic) locates B-scans on the fundus image in its pixels, not in mm), the
distance is unknown: it is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import to_bscan_stack
from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared
from .volume import OctVolume

OPHTHALMIC_TOMOGRAPHY = "1.2.840.10008.5.1.4.1.1.77.1.5.4"  # PS3.4 B.5: Ophthalmic Tomography Image Storage
DICOM_SUFFIXES = (".dcm", ".dicom")
DICOM_FORMAT = "DICOM OCT"
_PREAMBLE_BYTES = 128  # PS3.10 7.1: a 128-byte preamble, then "DICM"
_LATERALITY = {"R": "OD", "L": "OS"}  # PS3.3 C.8.17.5 Image Laterality: R, L, B (both) or U (unpaired)
_UNIFORM = 0.01  # frame positions closer than 1 % to one step count as evenly spaced


@dataclass
class DicomSource:
    """The headers of a DICOM OCT scan in B-scan order, without pixels (what a DICOM SEG references)."""

    files: list[Path]
    headers: list[Any]  # pydicom Datasets

    @property
    def n_bscans(self) -> int:
        return sum(_frames(header) for header in self.headers)


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` is a DICOM Part 10 file: "DICM" after the 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_PREAMBLE_BYTES + 4)
    except OSError:
        return False
    return head[_PREAMBLE_BYTES:] == b"DICM"


def dicom_files_in(folder: Path) -> list[Path]:
    """The DICOM files of a folder: those named .dcm/.dicom, or, where there are none, those without an extension
    that start like DICOM (devices often name them IM000001)."""
    children = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    named = [p for p in children if p.suffix.lower() in DICOM_SUFFIXES]
    return named or [p for p in children if not p.suffix and is_dicom_file(p)]


def read_dicom(path: str | Path) -> OctVolume:
    """Read a DICOM OCT file (multi-frame) or a folder of one DICOM file per B-scan, with spacing, laterality,
    device and acquisition date."""
    path = Path(path)
    source = read_dicom_source(path)
    first = source.headers[0]
    spacing, spacing_source = _spacing(source)
    data = _decode(path, source)
    photometric = str(first.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    channel_axis = -1 if int(first.get("SamplesPerPixel", 1)) > 1 else None
    data, source_ndim = to_bscan_stack(data, path, channel_axis)
    if photometric == "MONOCHROME1":  # PS3.3 C.7.6.3.1.2: the lowest value is white; octfluid's scans are MONOCHROME2
        data = _inverted(data)
    meta: dict[str, Any] = {
        "source": str(path.resolve()),
        "format": DICOM_FORMAT,
        "spacing_source": spacing_source,
        "series_instance_uid": str(first.get("SeriesInstanceUID", "")),
    }
    laterality = _laterality(first)
    if laterality:
        meta["laterality"] = laterality
    device = " ".join(str(first.get(key, "")).strip() for key in ("Manufacturer", "ManufacturerModelName")).strip()
    if device:
        meta["device"] = device
    acquired = _acquired(first)
    if acquired:
        meta["acquired"] = acquired
    if len(source.files) > 1:
        meta["files"] = [p.name for p in source.files]
    return OctVolume(data=data, spacing_mm=spacing, meta=meta, source_ndim=source_ndim)


def read_dicom_source(path: str | Path) -> DicomSource:
    """The headers of a DICOM OCT file or folder, checked as one OCT series and put in B-scan order; no pixel is
    read. Refuses non-OCT DICOM, folders that mix series or B-scan sizes, and B-scans whose order is unknown."""
    path = Path(path)
    if not path.is_dir():
        header = _header(path)
        _check_oct(path, header)
        return DicomSource([path], [header])
    files = dicom_files_in(path)
    if not files:
        raise OctReadError(path, "holds no DICOM files.", "Choose the folder of one DICOM OCT series.")
    headers = [(file, _header(file)) for file in files]
    oct_files = [(file, header) for file, header in headers if _sop_class(header) == OPHTHALMIC_TOMOGRAPHY]
    if not oct_files:
        kinds = sorted({_sop_class_name(header) for _, header in headers})
        raise OctReadError(
            path,
            f"holds no DICOM OCT: its {len(files)} DICOM files are {', '.join(kinds)}.",
            "Export the OCT volume from the device as DICOM OCT (Ophthalmic Tomography).",
        )
    _check_one_series(path, oct_files)
    ordered = _in_bscan_order(path, oct_files)
    return DicomSource([file for file, _ in ordered], [header for _, header in ordered])


def _header(path: Path):
    """The data set without its pixels (they are decoded later, after the memory check)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise OctReadError(path, "is not a DICOM file.", "Choose a DICOM OCT export (.dcm).") from None
    except MemoryError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged files
        detail = " ".join(str(exc).split())  # pydicom's messages may span lines; the user sees one
        raise OctReadError(
            path, f"could not be read as DICOM ({type(exc).__name__}: {detail}).", "Copy or export it again."
        ) from exc


def _sop_class(header) -> str:
    meta = getattr(header, "file_meta", None)
    return str(header.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))


def _sop_class_name(header) -> str:
    from pydicom.uid import UID

    uid = _sop_class(header)
    return UID(uid).name if uid else "of no declared SOP class"


def _check_oct(path: Path, header) -> None:
    if _sop_class(header) != OPHTHALMIC_TOMOGRAPHY:
        modality = header.get("Modality")
        raise OctReadError(
            path,
            f"is a DICOM {_sop_class_name(header)} file{f' ({modality})' if modality else ''}, not an OCT scan "
            "(Ophthalmic Tomography Image Storage).",
            "Export the OCT volume from the device as DICOM OCT.",
        )
    for key in ("Rows", "Columns"):
        if not int(header.get(key, 0) or 0):
            raise OctReadError(path, f"declares no {key}: it holds no image.", "Export it again.")


def _check_one_series(folder: Path, files: list[tuple[Path, Any]]) -> None:
    for file, header in files:
        _check_oct(file, header)
    first_file, first = files[0]
    series = sorted({str(header.get("SeriesInstanceUID", "")) for _, header in files})
    if len(series) > 1:
        raise OctReadError(
            folder,
            f"mixes {len(series)} DICOM OCT series (Series Instance UIDs {', '.join(series)}).",
            "Keep the files of one series per folder.",
        )
    for file, header in files[1:]:
        for key in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel"):
            if header.get(key) != first.get(key):
                raise OctReadError(
                    folder,
                    f"mixes B-scans of different {key}: {first_file.name} has {first.get(key)}, "
                    f"{file.name} has {header.get(key)}.",
                    "Keep the files of one series per folder.",
                )
    if len(files) > 1 and any(_frames(header) > 1 for _, header in files):
        raise OctReadError(
            folder,
            f"holds {len(files)} DICOM OCT files, some with several B-scans: octfluid reads one multi-frame file, "
            "or one file per B-scan.",
            "Open the multi-frame file itself.",
        )


def _in_bscan_order(folder: Path, files: list[tuple[Path, Any]]) -> list[tuple[Path, Any]]:
    """One file per B-scan, sorted by Instance Number, else by position along the B-scans' normal."""
    if len(files) == 1:
        return files
    numbers = [header.get("InstanceNumber") for _, header in files]
    if all(number is not None for number in numbers) and len({int(n) for n in numbers}) == len(files):
        return sorted(files, key=lambda item: int(item[1].InstanceNumber))
    positions = _positions_along_normal([header for _, header in files])
    if positions is not None and len(set(positions)) == len(files):
        return [item for _, item in sorted(zip(positions, files), key=lambda pair: pair[0])]
    raise OctReadError(
        folder,
        "does not say the order of its B-scans (Instance Numbers missing or repeated, no Image Position).",
        "Export the series again, or as one multi-frame file.",
    )


def _frames(header) -> int:
    return int(header.get("NumberOfFrames", 1) or 1)


def _frame_groups(header) -> list:
    """Each frame's functional groups: its Per-frame item, with the Shared item for what that does not hold."""
    shared = (header.get("SharedFunctionalGroupsSequence") or [None])[0]
    per_frame = header.get("PerFrameFunctionalGroupsSequence") or []
    return [(per_frame[index] if index < len(per_frame) else None, shared) for index in range(_frames(header))]


def _group_item(groups: tuple, sequence: str):
    """The first item of ``sequence`` in a frame's Per-frame group, else in the Shared group."""
    for group in groups:
        items = group.get(sequence) if group is not None else None
        if items:
            return items[0]
    return None


def _frame_values(source: DicomSource, sequence: str, keyword: str) -> list:
    """``keyword`` of every B-scan: from the functional group ``sequence``, else the data set's top level."""
    values = []
    for header in source.headers:
        for groups in _frame_groups(header):
            item = _group_item(groups, sequence)
            value = item.get(keyword) if item is not None else None
            values.append(value if value is not None else header.get(keyword))
    return values


def _one_value(values: list) -> Any:
    """The value all B-scans share, or None where one lacks it or they disagree."""
    if not values or any(value is None for value in values):
        return None
    first = values[0]
    return first if all(value == first for value in values[1:]) else None


def _spacing(source: DicomSource) -> tuple[tuple[float | None, float | None, float | None], str]:
    """(B-scan, depth, width) in mm and where each came from; an axis the B-scans disagree on is unknown."""
    pixel_spacing = _one_value(
        [
            None if v is None else tuple(float(x) for x in v)
            for v in _frame_values(source, "PixelMeasuresSequence", "PixelSpacing")
        ]
    )
    depth, width = pixel_spacing if pixel_spacing is not None and len(pixel_spacing) == 2 else (None, None)
    bscan, bscan_source = None, "B-scan distance not recorded (enter it in Quantify)"
    if source.n_bscans > 1:
        step = _position_step(source)
        between = _one_value(_frame_values(source, "PixelMeasuresSequence", "SpacingBetweenSlices"))
        thickness = _one_value(_frame_values(source, "PixelMeasuresSequence", "SliceThickness"))
        if step is not None:
            bscan, bscan_source = step, "B-scan distance from the frames' Plane Position (Patient)"
        elif between is not None:
            bscan, bscan_source = float(between), "B-scan distance from Spacing Between Slices"
        elif thickness is not None:
            bscan, bscan_source = float(thickness), "B-scan distance from Slice Thickness"
    if depth is None and bscan is None:
        return (None, None, None), "unknown (the DICOM file records no Pixel Measures: enter the spacing in Quantify)"
    pixels = "DICOM Pixel Spacing" if depth is not None else "DICOM without Pixel Spacing"
    return (bscan, depth, width), f"{pixels}; {bscan_source}"


def seg_slice_thickness(source: DicomSource) -> float | None:
    """A Slice Thickness (mm) for a DICOM SEG of ``source``, where the source records none of its own (None where it
    does, or where its B-scan distance is unknown): a SEG whose Pixel Measures lack it is written by highdicom but
    refused by highdicom's own reader. It is the B-scan distance the source records (its positions or Spacing
    Between Slices), the nominal thickness of a B-scan in a raster."""
    if _one_value(_frame_values(source, "PixelMeasuresSequence", "SliceThickness")) is not None:
        return None
    (bscan, _, _), _ = _spacing(source)
    return bscan


def _orientation_normal(header, groups: tuple) -> np.ndarray | None:
    item = _group_item(groups, "PlaneOrientationSequence")
    orientation = (item.get("ImageOrientationPatient") if item is not None else None) or header.get(
        "ImageOrientationPatient"
    )
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    length = float(np.linalg.norm(normal))
    return normal / length if length > 0 else None


def _positions_along_normal(headers: list) -> list[float] | None:
    """Every frame's Image Position (Patient) projected on the normal of its orientation, in mm; None if a frame
    lacks either (PS3.3 C.7.6.2.1.1: the one reliable source of the distance between planes)."""
    positions = []
    for header in headers:
        for groups in _frame_groups(header):
            item = _group_item(groups, "PlanePositionSequence")
            position = (item.get("ImagePositionPatient") if item is not None else None) or header.get(
                "ImagePositionPatient"
            )
            normal = _orientation_normal(header, groups)
            if position is None or len(position) != 3 or normal is None:
                return None
            positions.append(float(np.dot(np.asarray(position, float), normal)))
    return positions


def _position_step(source: DicomSource) -> float | None:
    """The distance between neighbouring B-scans from their positions, when they are evenly spaced."""
    positions = _positions_along_normal(source.headers)
    if positions is None or len(positions) < 2:
        return None
    steps = np.abs(np.diff(positions))
    mean = float(steps.mean())
    if mean <= 0 or float(np.abs(steps - mean).max()) > _UNIFORM * mean:
        return None  # unevenly spaced or repeated planes: no single distance describes them
    return mean


def _laterality(header) -> str | None:
    shared = (header.get("SharedFunctionalGroupsSequence") or [None])[0]
    anatomy = _group_item((shared,), "FrameAnatomySequence") if shared is not None else None
    for value in (
        header.get("ImageLaterality"),
        header.get("Laterality"),
        anatomy.get("FrameLaterality") if anatomy is not None else None,
    ):
        if value and str(value).upper() in _LATERALITY:
            return _LATERALITY[str(value).upper()]
    return None


def _acquired(header) -> str | None:
    """ISO date (and time) of the acquisition: Acquisition DateTime, else Acquisition, Content or Study Date."""
    stamp = str(header.get("AcquisitionDateTime", "") or "")
    if not stamp:
        for date_key, time_key in (
            ("AcquisitionDate", "AcquisitionTime"),
            ("ContentDate", "ContentTime"),
            ("StudyDate", "StudyTime"),
        ):
            if header.get(date_key):
                stamp = f"{header.get(date_key)}{header.get(time_key, '') or ''}"
                break
    digits = stamp.split(".")[0].split("+")[0].split("-")[0]
    if len(digits) < 8 or not digits.isdigit():
        return None
    date = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    if len(digits) >= 12:
        seconds = digits[12:14] or "00"
        return f"{date} {digits[8:10]}:{digits[10:12]}:{seconds}"
    return date


def _declared(path: Path, header) -> tuple[tuple[int, ...], np.dtype]:
    bits = int(header.get("BitsAllocated", 8) or 8)
    if bits not in (8, 16, 32):
        raise OctReadError(path, f"stores {bits}-bit pixels; an OCT scan stores 8, 16 or 32 bits.")
    signed = int(header.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    shape = (int(header.Rows), int(header.Columns)) + ((samples,) if samples > 1 else ())
    return shape, dtype


def _decode(path: Path, source: DicomSource) -> np.ndarray:
    """All B-scans in one array, filled a frame at a time, after checking what the headers declare against the
    memory budget (a small compressed file can declare gigabytes)."""
    frame_shape, dtype = _declared(path, source.headers[0])
    shape = (source.n_bscans, *frame_shape)
    frame_bytes = array_bytes(frame_shape, dtype.itemsize)
    # the volume, plus one decoded frame and its encoded bytes at a time (pydicom reads frames from the file)
    check_scan_allocation(
        path,
        array_bytes(shape, dtype.itemsize) + 2 * frame_bytes,
        f"Decoding this scan ({describe_declared(shape, dtype)})",
    )
    data = np.empty(shape, dtype)
    index = 0
    for file, header in zip(source.files, source.headers):
        try:
            for frame in _frames_of(file):
                if index >= len(data) or frame.shape != frame_shape:
                    raise OctReadError(
                        file,
                        f"holds a frame of {frame.shape} where its header declares {frame_shape}.",
                        "The file may be damaged: export it again.",
                    )
                data[index] = frame
                index += 1
        except (OctReadError, MemoryError):
            raise
        except Exception as exc:  # pydicom and its decoders raise many types for damaged or unsupported data
            raise _decoding_error(file, header, exc) from exc
    if index != len(data):
        raise OctReadError(path, f"holds {index} B-scans where its headers declare {len(data)}.", "Export it again.")
    return data


def _frames_of(file: Path):
    from pydicom.pixels import iter_pixels

    # pydicom turns YBR colour into RGB (its default): to_bscan_stack accepts RGB whose channels are equal
    yield from iter_pixels(file)


def _decoding_error(file: Path, header, exc: Exception) -> OctReadError:
    from pydicom.uid import UID

    syntax = UID(str(header.file_meta.get("TransferSyntaxUID", ""))) if hasattr(header, "file_meta") else None
    detail = " ".join(str(exc).split())
    if syntax is not None and syntax.is_compressed:
        return OctReadError(
            file,
            f"holds pixels compressed as {syntax.name} that could not be decoded ({type(exc).__name__}: {detail}).",
            "Export it uncompressed, or install a decoder for it (pip install pylibjpeg pylibjpeg-libjpeg "
            "pylibjpeg-openjpeg).",
        )
    return OctReadError(
        file,
        f"holds pixels that could not be read ({type(exc).__name__}: {detail}).",
        "The file may be truncated: copy or export it again.",
    )


def _inverted(data: np.ndarray) -> np.ndarray:
    if data.dtype.kind == "u":
        return np.subtract(np.iinfo(data.dtype).max, data, out=data)
    return np.subtract(data.max() + data.min(), data, out=data)
