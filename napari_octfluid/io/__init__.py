"""Reading OCT scans into :class:`OctVolume` and writing labels back, with their physical spacing."""

from .dispatch import SUPPORTED_SUFFIXES, can_read, read_volume
from .errors import OctReadError
from .tiff import write_tiff
from .volume import OctVolume

__all__ = ["OctReadError", "OctVolume", "SUPPORTED_SUFFIXES", "can_read", "read_volume", "write_tiff"]
