"""Reading OCT scans into :class:`OctVolume` and writing labels back, with their physical spacing."""

from .dicom import read_dicom
from .dispatch import SUPPORTED_SUFFIXES, can_read, read_volume
from .duke_mat import read_duke_mat
from .errors import OctReadError
from .export import ExportError, write_dicom_seg, write_nifti
from .metaimage import read_metaimage
from .tiff import write_tiff
from .volume import OctVolume

__all__ = [
    "ExportError",
    "OctReadError",
    "OctVolume",
    "SUPPORTED_SUFFIXES",
    "can_read",
    "read_dicom",
    "read_duke_mat",
    "read_metaimage",
    "read_volume",
    "write_dicom_seg",
    "write_nifti",
    "write_tiff",
]
