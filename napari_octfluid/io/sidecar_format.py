"""What a corrections sidecar holds, and the checks a file must pass before octfluid believes it is one.

Format 2 binds a sidecar to its scan: it stores the scan's shape, dtype and a BLAKE2b digest of its pixels
(:class:`~napari_octfluid.io.scan_identity.ScanIdentity`), and a sidecar whose scan differs (copied or linked from
another scan of the same shape) is refused. Members (each one ``.npy`` array):

=============== ================= ====================================================================
format_version  int scalar        2 (1: written before the binding existed; restored with a notice)
labels          int ``[Z, Y, X]`` the user's labels, the scan's shape
baseline        int ``[Z, Y, X]`` the labels as predicted or loaded (``ReviewState.baseline``)
accepted        bool ``[Z]``      B-scans accepted unchanged
model           str scalar        the weights that predicted the baseline
uncertainty     float ``[Z]``     optional: the model's per B-scan uncertainty
saved_at        float scalar      seconds since the epoch
scan_shape      int ``[3]``       the scan's ``[Z, Y, X]`` (this and the next three: format 2, absent when
                                  the autosave did not know its scan; restored with a notice then)
scan_dtype      str scalar        the scan's pixel type, e.g. ``uint16``
scan_digest     str scalar        BLAKE2b-256 (hex) of the scan's pixels (``scan_digest``)
scan_name       str scalar        the scan's file name, only to name it in messages
spacing_mm      float ``[3]``     optional: the spacing (B-scan, depth, width) in mm, NaN where unknown,
                                  when the user entered one or the scan's file gave one
spacing_source  str scalar        optional, with spacing_mm: where that spacing came from
=============== ================= ====================================================================

The two spacing members were added within format 2 (an octfluid that does not know them skips them, and a
sidecar without them restores with the scan's own spacing).

Every member's header is checked (type, shape against the scan's, size against the zip member: see
:mod:`~napari_octfluid.io.safe_npz`) before any array is read; a file that fails raises :class:`SidecarError`.
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ..review import ReviewState
from ..spacing import UNKNOWN_SOURCE, SpacingError, check_spacing
from .safe_npz import Header, decimal_size, declared_bytes, member_header, read_member
from .scan_identity import ScanIdentity

FORMAT_VERSION = 2
UNBOUND_VERSION = 1  # sidecars written before the binding to the scan
MAX_TEXT_CHARS = 4096  # model and scan names; a longer string is not something octfluid wrote

_INTEGER, _FLOAT, _TEXT, _BOOL = "iu", "f", "U", "b"


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message says why."""


@dataclass(frozen=True)
class SavedSpacing:
    """A spacing kept with the corrections: (B-scan, depth, width) in mm, None where unknown, and its source."""

    spacing_mm: tuple[float | None, float | None, float | None]
    source: str

    def as_members(self) -> dict[str, np.ndarray]:
        values = [np.nan if s is None else float(s) for s in self.spacing_mm]
        return {"spacing_mm": np.array(values, np.float64), "spacing_source": np.array(self.source)}

    @classmethod
    def from_members(cls, arrays: dict[str, Any], name: str) -> tuple["SavedSpacing | None", str | None]:
        """The spacing a sidecar holds (None when it holds none), and a notice when it is not a plausible OCT
        spacing: then it is left out (the quantification would print absurd figures from it), and the corrections
        are restored without it."""
        if "spacing_mm" not in arrays:
            return None, None
        values = tuple(None if np.isnan(v) else float(v) for v in np.asarray(arrays["spacing_mm"], np.float64))
        try:
            spacing = check_spacing(values)
        except SpacingError as error:
            return None, f"{name} holds an impossible spacing, left out: {error}"
        return cls(spacing, str(arrays.get("spacing_source", "")) or UNKNOWN_SOURCE), None


def sidecar_members(
    labels: np.ndarray, state: ReviewState, scan: ScanIdentity | None, spacing: SavedSpacing | None = None
) -> dict[str, np.ndarray]:
    """The members a sidecar of ``labels`` and ``state`` holds, bound to ``scan`` when it is known, with the
    ``spacing`` when one is known on any axis."""
    labels = np.asarray(labels)
    if labels.shape != state.baseline.shape:
        raise ValueError(f"labels {labels.shape} and review baseline {state.baseline.shape} differ in shape")
    if scan is not None and labels.shape != tuple(scan.shape):
        raise ValueError(f"the labels {labels.shape} do not cover the scan {tuple(scan.shape)} they belong to")
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "labels": labels,
        "baseline": state.baseline,
        "accepted": state.accepted,
        "model": np.array(state.model),
        "saved_at": np.array(time.time()),
    }
    if state.uncertainty is not None:
        arrays["uncertainty"] = np.asarray(state.uncertainty, np.float64)
    if scan is not None:
        arrays.update(
            scan_shape=np.array(scan.shape, np.int64),
            scan_dtype=np.array(scan.dtype),
            scan_digest=np.array(scan.digest),
            scan_name=np.array(scan.name),
        )
    if spacing is not None and any(s is not None for s in spacing.spacing_mm):
        arrays.update(spacing.as_members())
    return arrays


@dataclass(frozen=True)
class _Member:
    """What one member must be: numpy kind codes, and its shape given the labels' ``(Z, Y, X)`` (None: any)."""

    kinds: str
    shape: Any  # callable (Z, Y, X) -> tuple, or a fixed tuple
    required: bool = True


_MEMBERS: dict[str, _Member] = {
    "labels": _Member(_INTEGER, lambda zyx: zyx),
    "baseline": _Member(_INTEGER, lambda zyx: zyx),
    "accepted": _Member(_BOOL, lambda zyx: zyx[:1]),
    "model": _Member(_TEXT, ()),
    "uncertainty": _Member(_FLOAT, lambda zyx: zyx[:1], required=False),
    "saved_at": _Member(_FLOAT + _INTEGER, (), required=False),
    "scan_shape": _Member(_INTEGER, (3,), required=False),
    "scan_dtype": _Member(_TEXT, (), required=False),
    "scan_digest": _Member(_TEXT, (), required=False),
    "scan_name": _Member(_TEXT, (), required=False),
    "spacing_mm": _Member(_FLOAT, (3,), required=False),
    "spacing_source": _Member(_TEXT, (), required=False),
}
_KIND_NAMES = {
    _INTEGER: "whole numbers",
    _BOOL: "true/false flags",
    _TEXT: "text",
    _FLOAT: "decimal numbers",
    _FLOAT + _INTEGER: "numbers",
}


def read_checked_members(
    stream: BinaryIO, name: str, expected_shape: tuple[int, ...] | None
) -> tuple[int, dict[str, Any]]:
    """The format version and every member octfluid knows, each checked from its header before it is read (unknown
    members are skipped: a later octfluid of the same format may add some)."""
    with zipfile.ZipFile(stream) as archive:
        members = {info.filename: info for info in archive.infolist()}
        version_header = member_header(archive, members, "format_version", name)
        if version_header is None:
            raise SidecarError(f"{name} is damaged: it holds no format version")
        _expect(version_header, _INTEGER, (), "format_version", name)
        version = int(read_member(archive, members["format_version.npy"]))
        if version > FORMAT_VERSION:
            raise SidecarError(
                f"{name} was written by a newer octfluid (format {version}): update octfluid to open these corrections"
            )
        if version < UNBOUND_VERSION:
            raise SidecarError(f"{name} is damaged: format {version} never existed")
        headers = {key: member_header(archive, members, key, name) for key in _MEMBERS}
        for key, member in _MEMBERS.items():
            if headers[key] is None and member.required:
                raise SidecarError(f"{name} is damaged: it holds no {key}")
        labels_shape = headers["labels"][0]
        if len(labels_shape) != 3:
            raise SidecarError(f"{name} holds labels of shape {labels_shape}, not a volume [Z, Y, X]")
        if expected_shape is not None and labels_shape != tuple(expected_shape):
            raise SidecarError(
                f"{name} holds labels of shape {labels_shape} ({decimal_size(declared_bytes(headers['labels']))}) "
                f"but the scan has shape {tuple(expected_shape)}: it belongs to another scan"
            )
        for key, member in _MEMBERS.items():
            if headers[key] is not None:
                shape = member.shape(labels_shape) if callable(member.shape) else member.shape
                _expect(headers[key], member.kinds, shape, key, name)
        arrays: dict[str, Any] = {
            key: read_member(archive, members[f"{key}.npy"]) for key, header in headers.items() if header is not None
        }
    for key in ("model", "scan_dtype", "scan_digest", "scan_name", "spacing_source"):
        if key in arrays:
            arrays[key] = str(arrays[key])
    return version, arrays


def _expect(header: Header, kinds: str, shape: tuple[int, ...], key: str, name: str) -> None:
    declared_shape, dtype = header
    if dtype.kind not in kinds:
        raise SidecarError(f"{name} holds {key} of type {dtype.name}, not {_KIND_NAMES[kinds]}")
    if declared_shape != tuple(shape):
        what = "a single value" if shape == () else f"of shape {tuple(shape)}"
        raise SidecarError(f"{name} holds {key} of shape {declared_shape}, not {what}")
    if kinds == _TEXT and dtype.itemsize // 4 > MAX_TEXT_CHARS:
        raise SidecarError(f"{name} holds a {key} of {dtype.itemsize // 4} characters")


def check_binding(arrays: dict[str, Any], name: str, scan: ScanIdentity | None, version: int) -> str | None:
    """Refuse a sidecar bound to another scan; a notice for one bound to none (older format, or an autosave that
    did not know its scan)."""
    binding = [key for key in ("scan_shape", "scan_dtype", "scan_digest") if key in arrays]
    if not binding:
        why = "was written by an older octfluid" if version == UNBOUND_VERSION else "was saved without its scan"
        return (
            f"{name} {why} and is not bound to a scan: its corrections fit this scan's shape and were "
            f"restored, but check that they are this scan's (the next autosave binds them to it)"
        )
    if len(binding) < 3:
        raise SidecarError(f"{name} is damaged: it holds only part of its scan's fingerprint ({', '.join(binding)})")
    saved_for = ScanIdentity(
        tuple(int(n) for n in arrays["scan_shape"]),
        arrays["scan_dtype"],
        arrays["scan_digest"],
        arrays.get("scan_name", ""),
    )
    if tuple(arrays["labels"].shape) != saved_for.shape:
        raise SidecarError(
            f"{name} is damaged: its labels {arrays['labels'].shape} do not cover the scan {saved_for.shape} it names"
        )
    if scan is not None and saved_for != scan:
        raise SidecarError(
            f"{name} was saved for {saved_for.describe()}, whose pixels differ from this scan's: "
            f"it belongs to another scan (copied or linked here)"
        )
    return None
