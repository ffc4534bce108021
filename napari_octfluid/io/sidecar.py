"""The corrections sidecar: the user's labels and review state, saved next to the scan so that reopening the
scan restores them and a crash loses at most the last autosave interval.

``<scan file or folder>.octfluid.npz``: an npz (numpy only, never pickles; its members are described in
:mod:`~napari_octfluid.io.sidecar_format`) written to a temporary file in the same folder, flushed to disk and
renamed over the old one, so that a crash during a save leaves the previous sidecar whole.

Reading trusts nothing in the file: only a regular file is opened (never a pipe, a device, or a symbolic link that
could point at another scan's sidecar), and every member's header is checked before any array is read
(:mod:`~napari_octfluid.io.safe_npz`), so a few bytes cannot declare gigabytes. A sidecar that is unusable raises
:class:`SidecarError`; it is never deleted or overwritten: before an autosave replaces a sidecar that was not
restored, :func:`keep_unrestored_sidecar` renames it aside.
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..review import ReviewState
from .safe_npz import UnsafeNpzError, open_regular_file
from .scan_identity import SCAN_IDENTITY_KEY, ScanIdentity, scan_digest
from .sidecar_format import (
    FORMAT_VERSION,
    SavedSpacing,
    SidecarError,
    check_binding,
    read_checked_members,
    sidecar_members,
)

SUFFIX = ".octfluid.npz"

# Where a napari labels layer's octfluid metadata keeps the sidecar file it was restored from (plain values, no
# napari here): the one its autosave may replace without keeping it aside.
RESTORED_SIDECAR_KEY = "restored_sidecar"

_LINK_REFUSAL = (
    "a symbolic link, not a sidecar octfluid wrote for this scan (it may lead to another scan's corrections)"
)

__all__ = [  # the scan's identity and the format's error and version, where the sidecar's users have found them
    "FORMAT_VERSION",
    "RESTORED_SIDECAR_KEY",
    "SCAN_IDENTITY_KEY",
    "SUFFIX",
    "RestoredSidecar",
    "SavedSpacing",
    "ScanIdentity",
    "SidecarError",
    "file_fingerprint",
    "keep_unrestored_sidecar",
    "load_sidecar",
    "read_sidecar",
    "save_sidecar",
    "scan_digest",
    "set_aside",
    "sidecar_path",
]


def sidecar_path(scan_path: str | os.PathLike) -> Path:
    """Where the corrections of ``scan_path`` live: beside it, named after it."""
    scan = Path(scan_path)
    return scan.with_name(scan.name + SUFFIX)


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
    path: str | os.PathLike,
    labels: np.ndarray,
    state: ReviewState,
    scan: ScanIdentity | None = None,
    spacing: SavedSpacing | None = None,
) -> Path:
    """Write labels and review state atomically to ``path``, bound to ``scan`` when it is known (without it, the
    sidecar is restored later with a notice that it could not be checked), with the scan's ``spacing`` when known
    (one the user entered is restored with the corrections)."""
    path = Path(path)
    arrays = sidecar_members(labels, state, scan, spacing)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez_compressed(stream, **arrays)
    return path


# --- reading -------------------------------------------------------------------------------------------------------
@dataclass
class RestoredSidecar:
    """A sidecar that passed every check. ``notice`` says what the user should know (an unbound sidecar);
    ``fingerprint`` is the file it came from (:func:`file_fingerprint`), so that the autosave knows it may
    replace it; ``spacing`` the spacing saved with the corrections, None when none was."""

    labels: np.ndarray
    state: ReviewState
    notice: str | None
    fingerprint: list[int]
    spacing: SavedSpacing | None = None


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
    try:
        stream, status = open_regular_file(path, _LINK_REFUSAL)
        with stream:
            version, arrays = read_checked_members(stream, path.name, expected_shape)
    except SidecarError:
        raise
    except UnsafeNpzError as exc:  # before ValueError, which it is: its message already says what is wrong
        raise SidecarError(str(exc)) from exc
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
    notice = check_binding(arrays, path.name, scan, version)
    labels = arrays["labels"]
    try:
        state = ReviewState(arrays["baseline"], arrays["accepted"], str(arrays["model"]), arrays.get("uncertainty"))
    except ValueError as exc:
        raise SidecarError(f"{path.name} holds an inconsistent review state ({exc})") from exc
    state.update(labels)
    spacing, spacing_notice = SavedSpacing.from_members(arrays, path.name)
    notice = "; ".join(text for text in (notice, spacing_notice) if text) or None
    return RestoredSidecar(labels, state, notice, _fingerprint(status), spacing)


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
