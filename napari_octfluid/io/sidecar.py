"""The corrections sidecar: the user's labels and review state, saved next to the scan so that reopening the
scan restores them and a crash loses at most the last autosave interval.

``<scan file or folder>.octfluid.npz``: an npz (numpy only, opened with ``allow_pickle=False``) written to a
temporary file in the same folder, flushed to disk and renamed over the old one, so that a crash during a save
leaves the previous sidecar whole.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..review import ReviewState

SUFFIX = ".octfluid.npz"
FORMAT_VERSION = 1


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message says why and what happens to it."""


def sidecar_path(scan_path: str | os.PathLike) -> Path:
    """Where the corrections of ``scan_path`` live: beside it, named after it."""
    scan = Path(scan_path)
    return scan.with_name(scan.name + SUFFIX)


def save_sidecar(path: str | os.PathLike, labels: np.ndarray, state: ReviewState) -> Path:
    """Write labels and review state atomically to ``path``."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.shape != state.baseline.shape:
        raise ValueError(f"labels {labels.shape} and review baseline {state.baseline.shape} differ in shape")
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
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez_compressed(stream, **arrays)
    return path


def load_sidecar(path: str | os.PathLike, expected_shape: tuple[int, ...] | None = None
                 ) -> tuple[np.ndarray, ReviewState]:
    """The labels and review state saved in ``path``.

    Raises
    ------
    SidecarError
        When the file is damaged, from a newer octfluid, or made for a scan of another shape.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as saved:
            version = int(saved["format_version"])
            if version > FORMAT_VERSION:
                raise SidecarError(f"{path.name} was written by a newer octfluid (format {version}): "
                                   f"update octfluid to open these corrections.")
            labels = saved["labels"]
            state = ReviewState(saved["baseline"], saved["accepted"], str(saved["model"]),
                                saved["uncertainty"] if "uncertainty" in saved.files else None)
    except SidecarError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # zip damage surfaces as any of these
        raise SidecarError(f"{path.name} is damaged and was not loaded ({exc}); it is left in place, rename it "
                           f"to keep it, or delete it to start afresh.") from exc
    if expected_shape is not None and labels.shape != tuple(expected_shape):
        raise SidecarError(f"{path.name} holds labels of shape {labels.shape} but the scan has shape "
                           f"{tuple(expected_shape)}: it belongs to another scan and was not loaded.")
    state.update(labels)
    return labels, state
