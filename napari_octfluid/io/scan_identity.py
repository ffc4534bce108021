"""What ties saved corrections to one scan: its shape, pixel type and a BLAKE2b digest of its pixels, kept in the
napari layer's metadata as plain values.

The digest reads every pixel (about 0.35 s for a 134 MB scan). When a sidecar must be checked as the scan opens, the
reader computes it at once; when there is none, it is deferred (:func:`deferred_identity_metadata`): the metadata
holds the shape, the pixel type and a token, and the first caller of :meth:`ScanIdentity.from_metadata` (the
autosave, in its own thread) computes the digest from the scan's pixels, so opening a scan never waits for it. The
guarantee that no autosave writes onto another scan's sidecar is unchanged: whatever sidecar the first autosave
finds, it checks against this identity and keeps aside (``io.sidecar.keep_unrestored_sidecar``).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIGEST_BYTES = 32

# Where a napari layer's octfluid metadata keeps the scan's identity (plain values, no napari here): put there by
# the reader, copied to the labels predicted from the scan, so the autosave binds to it without reading the scan.
SCAN_IDENTITY_KEY = "scan_identity"
DEFERRED_KEY = "deferred"  # in that metadata: the token of a digest not computed yet


@dataclass
class _Deferred:
    """The pixels of a scan whose digest nobody has asked for yet (weakly held: a closed scan is not kept in
    memory for it), and the identity once computed."""

    pixels: weakref.ref
    name: str
    identity: "ScanIdentity | None" = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_DEFERRED: dict[str, _Deferred] = {}


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
        """The identity kept by :meth:`as_metadata` (or deferred by :func:`deferred_identity_metadata`: computed
        here, once, in the caller's thread), or None when there is none, it is not one, or its scan is gone."""
        if isinstance(value, dict) and "blake2b" not in value and DEFERRED_KEY in value:
            return _resolve(value[DEFERRED_KEY])
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


def deferred_identity_metadata(pixels: np.ndarray, name: str = "") -> dict[str, Any]:
    """Layer metadata for the identity of ``pixels`` without reading them: shape, pixel type and a token whose
    digest :meth:`ScanIdentity.from_metadata` computes when first asked. The caller must not change the pixels
    in place (napari's image layers never do)."""
    token = uuid.uuid4().hex

    def forget(_, token=token) -> None:  # the scan was closed before anyone asked: nothing to keep
        entry = _DEFERRED.get(token)
        if entry is not None and entry.identity is None:
            _DEFERRED.pop(token, None)

    _DEFERRED[token] = _Deferred(weakref.ref(pixels, forget), name)
    return {"shape": [int(n) for n in pixels.shape], "dtype": pixels.dtype.name, "name": name, DEFERRED_KEY: token}


def _resolve(token: Any) -> ScanIdentity | None:
    entry = _DEFERRED.get(str(token))
    if entry is None:
        return None
    with entry.lock:  # two threads asking at once compute it once
        if entry.identity is None:
            pixels = entry.pixels()
            if pixels is None:
                return None
            entry.identity = ScanIdentity.of(pixels, entry.name)  # kept: the callback drops only a missing one
        return entry.identity
