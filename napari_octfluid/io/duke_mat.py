"""The original .mat files of the Duke DME dataset (Chiu et al., "Kernel regression based segmentation of optical
coherence tomography images with diabetic macular edema", Biomedical Optics Express 6(4):1172-1194, 2015).

Each is a MATLAB v5 file with ``images`` (depth x width x B-scans, uint8: 61 B-scans of 496 x 768) and each
grader's fluid, ``manualFluid1`` and ``manualFluid2`` (same shape: NaN where the grader did not annotate, 0 for
background, a positive number for fluid), besides layer annotations octfluid does not use. Read through
scipy.io: the images as a scan, or a grader's fluid as labels (NaN -> 255 "not annotated", positive -> 1 fluid).
The files store no spacing: it is unknown (the user enters it in Quantify).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labels import FLUID, IGNORE
from .errors import OctReadError, array_bytes, check_scan_allocation, describe_declared
from .volume import OctVolume

MAT_SUFFIX = ".mat"
IMAGES = "images"
GRADERS = ("manualFluid1", "manualFluid2")
GRADERS_KEY = "duke_graders"  # the fluid variables a file holds, in the scan's metadata
DUKE_FORMAT = "Duke DME .mat"
# MATLAB class -> bytes per element, for the memory check before loading
_CLASS_BYTES = {
    "double": 8,
    "single": 4,
    "int8": 1,
    "uint8": 1,
    "logical": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
}


def read_duke_mat(path: str | Path, labels: str | None = None) -> OctVolume:
    """The scan of a Duke DME .mat file, or with ``labels`` (``"manualFluid1"`` or ``"manualFluid2"``) that
    grader's fluid as labels of the same [B-scan, depth, width] shape."""
    path = Path(path)
    variables = _variables(path)
    if IMAGES not in variables:
        raise OctReadError(
            path,
            f"holds no '{IMAGES}' variable (it has {', '.join(sorted(variables)) or 'none'}): octfluid reads the "
            ".mat files of the Duke DME dataset.",
            "Save other MATLAB scans as TIFF.",
        )
    if labels is not None and labels not in variables:
        raise OctReadError(
            path,
            f"holds no '{labels}' variable: its fluid annotations are {', '.join(_graders(variables)) or 'none'}.",
        )
    name = labels or IMAGES
    shape, matlab_class = variables[name]
    if len(shape) not in (2, 3) or min(shape, default=0) < 1:
        raise OctReadError(path, f"has '{name}' of shape {shape}; a scan is depth x width (x B-scans).")
    if labels is not None and shape != variables[IMAGES][0]:
        raise OctReadError(path, f"has '{name}' of shape {shape} but images of {variables[IMAGES][0]}.")
    itemsize = _CLASS_BYTES.get(matlab_class)
    if itemsize is None:
        raise OctReadError(path, f"holds '{name}' as a MATLAB {matlab_class}, not as numbers.")
    # scipy holds the variable's bytes and the array made from them; octfluid's [B-scan, depth, width] copy follows
    out_itemsize = 1 if labels is not None else itemsize
    needed = 2 * array_bytes(shape, itemsize) + array_bytes(shape, out_itemsize)
    check_scan_allocation(path, needed, f"Reading '{name}' ({describe_declared(shape, _numpy_class(matlab_class))})")
    array = _load(path, name)
    bscans_first = np.moveaxis(array, 2, 0) if array.ndim == 3 else array[np.newaxis]
    meta = {"source": str(path.resolve()), "format": DUKE_FORMAT, "spacing_source": "unknown"}
    if labels is None:
        meta[GRADERS_KEY] = _graders(variables)
        data = np.ascontiguousarray(bscans_first)
        if data.dtype.kind not in "uif":
            raise OctReadError(path, f"holds '{IMAGES}' as {data.dtype}, not as intensities.")
        return OctVolume(data=data, meta=meta, source_ndim=3 if array.ndim == 3 else 2)
    meta.update({"octfluid_kind": "labels", "grader": labels})
    return OctVolume(data=_fluid_labels(bscans_first), meta=meta, source_ndim=3 if array.ndim == 3 else 2)


def duke_graders(path: str | Path) -> list[str]:
    """The grader fluid variables a Duke .mat file holds (for the napari reader's labels layers)."""
    return _graders(_variables(Path(path)))


def _graders(variables: dict) -> list[str]:
    return [name for name in GRADERS if name in variables]


def _fluid_labels(fluid: np.ndarray) -> np.ndarray:
    """A grader's fluid as octfluid's labels: not annotated (NaN) -> IGNORE, positive -> FLUID, the rest 0."""
    labels = np.zeros(fluid.shape, np.uint8)
    if fluid.dtype.kind == "f":
        labels[np.isnan(fluid)] = IGNORE
    labels[fluid > 0] = FLUID  # NaN compares false: it stays IGNORE
    return labels


def _numpy_class(matlab_class: str) -> str:
    return {"double": "float64", "single": "float32", "logical": "bool"}.get(matlab_class, matlab_class)


def _variables(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, MATLAB class) of every variable, read from the file's headers without loading any."""
    import scipy.io

    with open(path, "rb") as handle:
        head = handle.read(128)
    if head.startswith(b"MATLAB 7.3"):
        raise OctReadError(
            path,
            "is a MATLAB v7.3 file (HDF5), which octfluid does not read.",
            "Save it in MATLAB with save(..., '-v7'), as the Duke DME dataset's files are.",
        )
    try:
        return {name: (tuple(int(s) for s in shape), cls) for name, shape, cls in scipy.io.whosmat(path)}
    except MemoryError:
        raise
    except Exception as exc:  # scipy raises ValueError, TypeError, NotImplementedError... for files it cannot read
        raise OctReadError(
            path,
            f"is not a readable MATLAB file ({type(exc).__name__}: {' '.join(str(exc).split())}).",
            "The file may be truncated: copy it again.",
        ) from exc


def _load(path: Path, name: str) -> np.ndarray:
    import scipy.io

    try:
        return np.asarray(scipy.io.loadmat(path, variable_names=[name])[name])
    except MemoryError:
        raise
    except Exception as exc:
        raise OctReadError(
            path,
            f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())}).",
            "The file may be truncated: copy it again.",
        ) from exc
