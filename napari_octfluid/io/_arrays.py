"""Turn whatever array a file held into B-scans, or say clearly why it cannot be one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import OctReadError

SUPPORTED_KINDS = {"u": "unsigned integer", "i": "integer", "f": "floating point"}


def to_bscan_stack(array: np.ndarray, path: str | Path, channel_axis: int | None = None) -> tuple[np.ndarray, int]:
    """Return ``(data[n_bscans, depth, width], source_ndim)`` for a scan read from ``path``.

    Parameters
    ----------
    array : np.ndarray
        The pixels as the file holds them.
    path : str or Path
        Named in the error messages.
    channel_axis : int, optional
        The axis of colour samples, when the file has one. A colour image whose channels are all equal
        (a grey B-scan saved as RGB, as many viewers export them) is accepted as grey; a real colour
        image is refused, since OCT intensities are single-channel.
    """
    if array.size == 0:
        raise OctReadError(path, f"holds no pixels (shape {array.shape}).", "Choose a file that contains a scan.")
    if array.dtype.kind == "b":
        raise OctReadError(
            path,
            "holds true/false values, which is a mask, not an OCT scan.",
            "Open it as labels, or choose the scan it belongs to.",
        )
    if array.dtype.kind not in SUPPORTED_KINDS:
        raise OctReadError(path, f"holds {array.dtype} values; an OCT scan must be integer or floating point.")
    if channel_axis is not None:
        array = _grey_from_channels(np.moveaxis(array, channel_axis, -1), path)
    squeezed = array.squeeze() if array.ndim > 2 else array
    if squeezed.ndim == 2:
        return squeezed[np.newaxis], 2
    if squeezed.ndim == 3:
        return squeezed, 3
    raise OctReadError(
        path,
        f"has {squeezed.ndim} dimensions (shape {array.shape}); octfluid reads one B-scan (2D) "
        "or a volume of B-scans (3D).",
        "Save each volume, time point or channel as its own file.",
    )


def _grey_from_channels(array: np.ndarray, path: str | Path) -> np.ndarray:
    colour = array[..., :3] if array.shape[-1] >= 3 else array
    grey = colour[..., 0]
    if all(np.array_equal(grey, colour[..., c]) for c in range(1, colour.shape[-1])):
        return grey
    raise OctReadError(
        path,
        "is a colour (RGB) image, but OCT B-scans are greyscale.",
        "Export the scan as greyscale, or open the vendor's own file.",
    )
