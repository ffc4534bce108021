"""Hand-made autosave sidecars for the hostile-input tests: a sidecar octfluid wrote for a scan, with members
replaced byte by byte, so that a test can declare what no numpy call would write (a 100 GB header over a few bytes
of data). Shared by the core tests (tests/io) and the reader's (tests/_qt)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib import format as npy_format

from napari_octfluid.io.sidecar import ScanIdentity, save_sidecar
from napari_octfluid.review import ReviewState

SHAPE = (4, 16, 20)  # the scans the sidecars are forged for


def scan_pixels(seed: int) -> np.ndarray:
    """The pixels of a scan of ``SHAPE``: another seed, another scan of the same shape."""
    return np.random.default_rng(seed).integers(0, 4096, SHAPE, dtype=np.uint16)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header_only(shape: tuple[int, ...], dtype) -> bytes:
    """An .npy member whose header declares ``shape`` but that holds a few bytes of data."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(
        buffer, {"descr": npy_format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )
    return buffer.getvalue() + bytes(16)


def corrections_for(pixels: np.ndarray) -> tuple[np.ndarray, ReviewState]:
    """Labels with one corrected and one accepted B-scan, for a scan of ``pixels``' shape."""
    labels = np.zeros(pixels.shape, np.uint8)
    state = ReviewState.start(labels, model="octfluid_default.pt")
    labels[0, 2:6, 3:9] = 1
    state.accept(pixels.shape[0] - 1)
    state.update(labels)
    return labels, state


def write_sidecar_for(path: Path, pixels: np.ndarray, scan_name: str = "scan.tif", bound: bool = True) -> Path:
    """The sidecar octfluid's autosave writes for corrections of the scan ``pixels``."""
    labels, state = corrections_for(pixels)
    return save_sidecar(path, labels, state, ScanIdentity.of(pixels, scan_name) if bound else None)


def replace_members(path: Path, **replacements: bytes | None) -> Path:
    """Rewrite the npz at ``path`` with members replaced (``None`` removes one)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    for key, value in replacements.items():
        if value is None:
            members.pop(f"{key}.npy", None)
        else:
            members[f"{key}.npy"] = value
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# Hostile member replacements for a scan of shape (Z, Y, X), with a phrase the refusal must contain.
HOSTILE_MEMBERS: dict[str, tuple[Callable[[tuple[int, int, int]], dict[str, bytes | None]], str]] = {
    "baseline_of_another_shape": (
        lambda zyx: {"baseline": npy_bytes(np.zeros((zyx[0], zyx[1] + 1, zyx[2]), np.uint8))},
        "baseline",
    ),
    "non_scalar_version": (lambda zyx: {"format_version": npy_bytes(np.array([2, 2]))}, "format_version"),
    "labels_declaring_100_GB": (lambda zyx: {"labels": npy_header_only((100_000, 1000, 1000), np.uint8)}, "100.0 GB"),
    "float_labels": (lambda zyx: {"labels": npy_bytes(np.zeros(zyx, np.float32))}, "float32"),
    "accepted_not_flags": (lambda zyx: {"accepted": npy_bytes(np.zeros(zyx[0], np.uint8))}, "accepted"),
    "accepted_of_another_length": (lambda zyx: {"accepted": npy_bytes(np.zeros(zyx[0] + 1, bool))}, "accepted"),
    "model_not_text": (lambda zyx: {"model": npy_bytes(np.array([1.5, 2.5]))}, "model"),
    "pickled_labels": (lambda zyx: {"labels": npy_bytes(np.array([object()], dtype=object))}, "Python objects"),
    "no_labels": (lambda zyx: {"labels": None}, "no labels"),
    "version_from_the_future": (lambda zyx: {"format_version": npy_bytes(np.array(99))}, "newer octfluid"),
    "part_of_the_binding": (lambda zyx: {"scan_digest": None}, "part of its scan"),
}
