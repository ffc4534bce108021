"""The corrections sidecar: the user's labels and review state, saved next to the scan so that reopening the
scan restores them and a crash loses at most the last autosave interval.

``<scan file or folder>.octfluid.npz``: an npz (numpy only, never pickles) written to a temporary file in the same
folder, flushed to disk and renamed over the old one, so that a crash during a save leaves the previous sidecar
whole.

Format 2 binds a sidecar to its scan: it stores the scan's shape, dtype and a BLAKE2b digest of its pixels
(:class:`ScanIdentity`), and a sidecar whose scan differs (copied or linked from another scan of the same shape) is
refused. Members (each one ``.npy`` array):

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
scan_digest     str scalar        BLAKE2b-256 (hex) of the scan's pixels (:func:`scan_digest`)
scan_name       str scalar        the scan's file name, only to name it in messages
=============== ================= ====================================================================

Reading trusts nothing in the file: only a regular file is opened (never a pipe, a device, or a symbolic link that
could point at another scan's sidecar), and every member's ``.npy`` header is checked (type, shape against the
scan's, size against the zip member) before any array is read, so a few bytes cannot declare gigabytes. A sidecar
that is unusable raises :class:`SidecarError`; it is never deleted or overwritten: before an autosave replaces a
sidecar that was not restored, :func:`keep_unrestored_sidecar` renames it aside.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from .._atomic import atomic_path
from ..review import ReviewState

SUFFIX = ".octfluid.npz"
FORMAT_VERSION = 2
UNBOUND_VERSION = 1  # sidecars written before the binding to the scan
DIGEST_BYTES = 32
# deflate cannot expand data more than about 1032-fold: a member that declares more than that per stored byte lies
DEFLATE_MAX_EXPANSION = 1100
MAX_TEXT_CHARS = 4096  # model and scan names; a longer string is not something octfluid wrote

_INTEGER, _FLOAT, _TEXT, _BOOL = "iu", "f", "U", "b"

# Where a napari layer's octfluid metadata keeps what the autosave needs (plain values, no napari here): the scan's
# identity (put there by the reader, copied to the labels predicted from the scan), and the sidecar file a restored
# labels layer came from (the one its autosave may replace without keeping it aside).
SCAN_IDENTITY_KEY = "scan_identity"
RESTORED_SIDECAR_KEY = "restored_sidecar"


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message says why."""


def sidecar_path(scan_path: str | os.PathLike) -> Path:
    """Where the corrections of ``scan_path`` live: beside it, named after it."""
    scan = Path(scan_path)
    return scan.with_name(scan.name + SUFFIX)


# --- the binding to the scan ---------------------------------------------------------------------------------------
def scan_digest(pixels: np.ndarray) -> str:
    """BLAKE2b-256 (hex) of the pixel values in C order, little-endian: the same for the same pixels whatever the
    byte order or memory layout the reader produced. Streams B-scan by B-scan, so it needs no copy of the volume
    (a contiguous little-endian B-scan is hashed in place; hashlib releases the GIL on large buffers)."""
    pixels = np.asarray(pixels)
    little_endian = pixels.dtype.newbyteorder("<")
    hasher = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for index in np.ndindex(*pixels.shape[:-2]):  # indexing, not reshape: a strided view must not be copied whole
        plane = np.ascontiguousarray(pixels[index], dtype=little_endian)
        hasher.update(plane.reshape(-1).view(np.uint8))
    return hasher.hexdigest()


@dataclass(frozen=True)
class ScanIdentity:
    """What ties a sidecar to one scan: its shape, pixel type and a digest of its pixels (the file name is kept for
    messages only: a renamed or moved scan keeps its corrections)."""

    shape: tuple[int, ...]
    dtype: str
    digest: str
    name: str = field(default="", compare=False)

    @classmethod
    def of(cls, pixels: np.ndarray, name: str = "") -> "ScanIdentity":
        """The identity of a scan's pixels ``[Z, Y, X]`` (reads every pixel once: compute it when the scan opens)."""
        pixels = np.asarray(pixels)
        return cls(tuple(int(n) for n in pixels.shape), pixels.dtype.name, scan_digest(pixels), name)

    def as_metadata(self) -> dict[str, Any]:
        """Plain values, for a napari layer's metadata (copied along with it to the labels predicted from it)."""
        return {"shape": list(self.shape), "dtype": self.dtype, "blake2b": self.digest, "name": self.name}

    @classmethod
    def from_metadata(cls, value: Any) -> "ScanIdentity | None":
        """The identity kept by :meth:`as_metadata`, or None when there is none or it is not one."""
        try:
            identity = cls(
                tuple(int(n) for n in value["shape"]),
                str(value["dtype"]),
                str(value["blake2b"]),
                str(value.get("name", "")),
            )
        except (TypeError, KeyError, ValueError, AttributeError):
            return None
        return identity if len(identity.digest) == 2 * DIGEST_BYTES else None

    def describe(self) -> str:
        return repr(self.name) if self.name else "another scan"


def file_fingerprint(path: str | os.PathLike) -> list[int] | None:
    """Which file is at ``path`` now (device, inode, size, modification time; the link itself, never its target):
    every atomic save makes a new one. None when nothing is there."""
    try:
        return _fingerprint(os.lstat(path))
    except FileNotFoundError:
        return None


def _fingerprint(status: os.stat_result) -> list[int]:
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns]


# --- writing -------------------------------------------------------------------------------------------------------
def save_sidecar(
    path: str | os.PathLike, labels: np.ndarray, state: ReviewState, scan: ScanIdentity | None = None
) -> Path:
    """Write labels and review state atomically to ``path``, bound to ``scan`` when it is known (without it, the
    sidecar is restored later with a notice that it could not be checked)."""
    path = Path(path)
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
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez_compressed(stream, **arrays)
    return path


# --- reading -------------------------------------------------------------------------------------------------------
@dataclass
class RestoredSidecar:
    """A sidecar that passed every check. ``notice`` says what the user should know (an unbound sidecar);
    ``fingerprint`` is the file it came from (:func:`file_fingerprint`), so that the autosave knows it may
    replace it."""

    labels: np.ndarray
    state: ReviewState
    notice: str | None
    fingerprint: list[int]


def load_sidecar(
    path: str | os.PathLike, expected_shape: tuple[int, ...] | None = None, scan: ScanIdentity | None = None
) -> tuple[np.ndarray, ReviewState]:
    """The labels and review state saved in ``path`` (see :func:`read_sidecar`)."""
    restored = read_sidecar(path, expected_shape, scan)
    return restored.labels, restored.state


def read_sidecar(
    path: str | os.PathLike, expected_shape: tuple[int, ...] | None = None, scan: ScanIdentity | None = None
) -> RestoredSidecar:
    """Read and check the sidecar at ``path``; with ``scan``, it must be this scan's (``expected_shape`` is then the
    scan's shape).

    Raises
    ------
    SidecarError
        When it is not a regular file, is damaged, malformed, from a newer octfluid, or made for another scan.
    """
    path = Path(path)
    if scan is not None:
        expected_shape = tuple(scan.shape)
    stream, status = _open_regular_file(path)
    with stream:
        try:
            version, arrays = _read_checked_arrays(stream, path.name, expected_shape)
        except SidecarError:
            raise
        # zip and npy damage surfaces as any of these; MemoryError only if the checks above were not enough
        except (
            OSError,
            ValueError,
            KeyError,
            EOFError,
            zipfile.BadZipFile,
            NotImplementedError,
            MemoryError,
            RuntimeError,
        ) as exc:
            raise SidecarError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from exc
    notice = _check_binding(arrays, path.name, scan, version)
    labels = arrays["labels"]
    try:
        state = ReviewState(arrays["baseline"], arrays["accepted"], str(arrays["model"]), arrays.get("uncertainty"))
    except ValueError as exc:
        raise SidecarError(f"{path.name} holds an inconsistent review state ({exc})") from exc
    state.update(labels)
    return RestoredSidecar(labels, state, notice, _fingerprint(status))


def _open_regular_file(path: Path) -> tuple[BinaryIO, os.stat_result]:
    """``path`` opened for reading if it is a regular file, and the very file that was checked (with its status):
    a named pipe would block the reader forever, a device could be endless, a symbolic link may point at another
    scan's sidecar."""
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise SidecarError(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISLNK(before.st_mode):
        raise SidecarError(
            f"{path.name} is a symbolic link, not a sidecar octfluid wrote for this scan "
            f"(it may lead to another scan's corrections)"
        )
    if not stat.S_ISREG(before.st_mode):
        raise SidecarError(f"{path.name} is not a regular file (a folder, pipe or device)")
    # O_NONBLOCK: should a pipe be swapped in after the check, opening it returns at once instead of waiting
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise SidecarError(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    opened = os.fstat(descriptor)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
        os.close(descriptor)
        raise SidecarError(f"{path.name} was replaced while it was being opened")
    return os.fdopen(descriptor, "rb"), before


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
}
_KIND_NAMES = {
    _INTEGER: "whole numbers",
    _BOOL: "true/false flags",
    _TEXT: "text",
    _FLOAT: "decimal numbers",
    _FLOAT + _INTEGER: "numbers",
}


def _read_checked_arrays(
    stream: BinaryIO, name: str, expected_shape: tuple[int, ...] | None
) -> tuple[int, dict[str, Any]]:
    """The format version and every member octfluid knows, each checked from its header before it is read (unknown
    members are skipped: a later octfluid of the same format may add some)."""
    with zipfile.ZipFile(stream) as archive:
        members = {info.filename: info for info in archive.infolist()}
        version_header = _header(archive, members, "format_version", name)
        if version_header is None:
            raise SidecarError(f"{name} is damaged: it holds no format version")
        _expect(version_header, _INTEGER, (), "format_version", name)
        version = int(_read(archive, members["format_version.npy"]))
        if version > FORMAT_VERSION:
            raise SidecarError(
                f"{name} was written by a newer octfluid (format {version}): update octfluid to open these corrections"
            )
        if version < UNBOUND_VERSION:
            raise SidecarError(f"{name} is damaged: format {version} never existed")
        headers = {key: _header(archive, members, key, name) for key in _MEMBERS}
        for key, member in _MEMBERS.items():
            if headers[key] is None and member.required:
                raise SidecarError(f"{name} is damaged: it holds no {key}")
        labels_shape = headers["labels"][0]
        if len(labels_shape) != 3:
            raise SidecarError(f"{name} holds labels of shape {labels_shape}, not a volume [Z, Y, X]")
        if expected_shape is not None and labels_shape != tuple(expected_shape):
            raise SidecarError(
                f"{name} holds labels of shape {labels_shape} ({_size(headers['labels'])}) but the "
                f"scan has shape {tuple(expected_shape)}: it belongs to another scan"
            )
        for key, member in _MEMBERS.items():
            if headers[key] is not None:
                shape = member.shape(labels_shape) if callable(member.shape) else member.shape
                _expect(headers[key], member.kinds, shape, key, name)
        arrays: dict[str, Any] = {
            key: _read(archive, members[f"{key}.npy"]) for key, header in headers.items() if header is not None
        }
    for key in ("model", "scan_dtype", "scan_digest", "scan_name"):
        if key in arrays:
            arrays[key] = str(arrays[key])
    return version, arrays


def _header(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], key: str, name: str
) -> tuple[tuple[int, ...], np.dtype] | None:
    """The shape and dtype a member's ``.npy`` header declares, once they are known to fit in the member (the
    data is not read); None when the member is absent."""
    info = members.get(f"{key}.npy")
    if info is None:
        return None
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(member)
        else:  # 3.0 exists only for field names beyond latin-1: structured arrays, which no member is
            raise SidecarError(f"{name} is damaged: {key} is stored in npy format {version}")
    if any(n < 0 for n in shape):
        raise SidecarError(f"{name} is damaged: {key} declares the shape {shape}")
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise SidecarError(
            f"{name} holds Python objects or records in {key}, which octfluid never writes (and never unpickles)"
        )
    declared = math.prod(shape) * dtype.itemsize
    stored_limit = info.compress_size * (DEFLATE_MAX_EXPANSION if info.compress_type != zipfile.ZIP_STORED else 1)
    if declared > info.file_size or declared > stored_limit:
        raise SidecarError(
            f"{name} is damaged: {key} declares {_bytes(declared)} in {_bytes(info.compress_size)} of file"
        )
    return shape, dtype


def _expect(header: tuple[tuple[int, ...], np.dtype], kinds: str, shape: tuple[int, ...], key: str, name: str) -> None:
    declared_shape, dtype = header
    if dtype.kind not in kinds:
        raise SidecarError(f"{name} holds {key} of type {dtype.name}, not {_KIND_NAMES[kinds]}")
    if declared_shape != tuple(shape):
        what = "a single value" if shape == () else f"of shape {tuple(shape)}"
        raise SidecarError(f"{name} holds {key} of shape {declared_shape}, not {what}")
    if kinds == _TEXT and dtype.itemsize // 4 > MAX_TEXT_CHARS:
        raise SidecarError(f"{name} holds a {key} of {dtype.itemsize // 4} characters")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as member:
        return npy_format.read_array(member, allow_pickle=False)


def _check_binding(arrays: dict[str, Any], name: str, scan: ScanIdentity | None, version: int) -> str | None:
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


def _size(header: tuple[tuple[int, ...], np.dtype]) -> str:
    shape, dtype = header
    return _bytes(math.prod(shape) * dtype.itemsize)


def _bytes(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


# --- never losing a sidecar ----------------------------------------------------------------------------------------
def set_aside(path: str | os.PathLike, reason: str = "unreadable") -> Path:
    """Rename ``path`` to ``<name>.<reason>-<YYYYmmdd-HHMMSS>`` beside it (a link is renamed, its target left
    alone) so that a new sidecar can take its place; nothing is copied or deleted."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept, count = path.with_name(f"{path.name}.{reason}-{stamp}"), 1
    while os.path.lexists(kept):
        count += 1
        kept = path.with_name(f"{path.name}.{reason}-{stamp}-{count}")
    os.rename(path, kept)
    return kept


def keep_unrestored_sidecar(
    path: str | os.PathLike, scan: ScanIdentity | None, restored: list[int] | None = None
) -> Path | None:
    """Before the first autosave of a session replaces ``path``: if something is there that this session did not
    restore (``restored``: the :func:`file_fingerprint` it restored from), rename it aside and return where it went
    (``.unreadable-<time>``: it could not be restored onto this scan; ``.previous-<time>``: it could, but these
    labels did not come from it, e.g. the scan was opened without its corrections). None when the path is free or
    holds the sidecar these labels were restored from."""
    path = Path(path)
    fingerprint = file_fingerprint(path)
    if fingerprint is None or (restored is not None and list(restored) == fingerprint):
        return None
    try:
        read_sidecar(path, scan=scan)
        reason = "previous"
    except Exception:  # whatever the reason it cannot be restored, it is kept under the same kind of name
        reason = "unreadable"
    return set_aside(path, reason)
