"""What ties saved corrections to one scan: its shape, pixel type and a BLAKE2b digest of its pixels, computed once
when the scan opens and kept in the napari layer's metadata as plain values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIGEST_BYTES = 32

# Where a napari layer's octfluid metadata keeps the scan's identity (plain values, no napari here): put there by
# the reader, copied to the labels predicted from the scan, so the autosave binds to it without reading the scan.
SCAN_IDENTITY_KEY = "scan_identity"


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
