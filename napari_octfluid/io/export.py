"""Fluid masks for other software: NIfTI with the spacing (nibabel) and DICOM SEG referencing the DICOM OCT it
segments (highdicom), so that 3D Slicer, ITK-SNAP or a PACS can take them.

NIfTI axes (NIfTI-1, https://nifti.nimh.nih.gov/nifti-1): octfluid's [Z, Y, X] = [B-scan, depth, width] array is
stored as i = width, j = depth, k = B-scan, with voxel sizes in mm and the affine diag(-width, -depth, B-scan) (axis
codes L, P, S): viewers that display radiologically (3D Slicer's axial view) then show each B-scan as the device
does, first A-scan on the left and depth downwards. The scan's orientation in the patient is not known to octfluid;
the affine places the B-scans for display, it does not claim anatomy. The labels are written as they are: 0
background, 1 fluid, 255 not annotated (intent "label").

DICOM SEG (PS3.3 A.51): a BINARY segmentation with one segment "fluid" (category Body substance, type Body fluid,
SNOMED CT; anatomic region Retina), every label above 0 but 255 counted as fluid, referencing the source series,
study and patient. highdicom places the frames of a multi-frame source through its Plane Position (Patient); a
source without it, or a series of one file per B-scan, cannot be referenced that way, and is refused.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from .._atomic import atomic_path
from ..labels import fluid_mask

NIFTI_SUFFIXES = (".nii.gz", ".nii")
DICOM_SEG_SUFFIXES = (".dcm",)
SEG_SERIES_NUMBER = 9100  # a series number of its own, after the device's, so a PACS lists the SEG apart
NIFTI_INTENT_LABEL = "label"  # NIfTI-1 intent code 1002: the values are labels, not intensities


class ExportError(ValueError):
    """A mask that cannot be written in the asked format; the message says why and what to do."""


def export_format(path: str | Path) -> str | None:
    """``"nifti"`` or ``"dicom-seg"`` from the file name, None for any other."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(DICOM_SEG_SUFFIXES):
        return "dicom-seg"
    return None


def nifti_affine(spacing_mm: Sequence[float]) -> np.ndarray:
    """The affine of a NIfTI file written by :func:`write_nifti` for (B-scan, depth, width) spacing in mm."""
    bscan, depth, width = (float(s) for s in spacing_mm)
    return np.diag([-width, -depth, bscan, 1.0])


def write_nifti(path: str | Path, labels: np.ndarray, spacing_mm: Sequence[float | None]) -> Path:
    """Write ``labels[Z, Y, X]`` (or one B-scan ``[Y, X]``) as NIfTI-1 (``.nii`` or gzipped ``.nii.gz``), atomically.

    Raises
    ------
    ExportError
        Where a spacing is unknown (a NIfTI file always states its voxel size) or the labels are not whole numbers.
    """
    import nibabel as nib

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    unknown = [axis for axis, s in zip(("B-scan", "depth", "width"), spacing_mm) if s is None]
    if unknown:
        raise ExportError(
            f"the spacing along {', '.join(unknown)} is unknown, and a NIfTI file always states its voxel size: "
            "give it (in mm, as in Quantify)."
        )
    if labels.dtype.kind not in "uib" or (labels.size and labels.min() < 0):
        raise ExportError(f"the mask holds {labels.dtype} values; a label file holds whole numbers from 0.")
    data = np.ascontiguousarray(
        labels.astype(np.uint8 if labels.max(initial=0) <= 255 else np.uint16).transpose(2, 1, 0)
    )
    image = nib.Nifti1Image(data, nifti_affine(spacing_mm))
    header = image.header
    header.set_xyzt_units("mm")
    header.set_intent(NIFTI_INTENT_LABEL)
    header["descrip"] = b"octfluid mask: i=width j=depth k=B-scan"
    # "aligned" (2): placed for display, not measured in the scanner's patient coordinates
    image.set_qform(image.affine, code=2)
    image.set_sform(image.affine, code=2)
    with atomic_path(path) as temporary:  # nibabel names the format by extension: the bytes are written here
        with open(temporary, "wb") as raw:
            if path.name.lower().endswith(".gz"):
                # no file name or time in the gzip header: the same mask gives the same bytes
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:
                    image.to_stream(stream)
            else:
                image.to_stream(raw)
    return path


def write_dicom_seg(
    path: str | Path,
    labels: np.ndarray,
    source_headers: Sequence,
    algorithm_type: str = "SEMIAUTOMATIC",
    slice_thickness_mm: float | None = None,
) -> Path:
    """Write the fluid of ``labels[Z, Y, X]`` as a DICOM SEG of the DICOM OCT whose headers are ``source_headers``
    (:func:`~napari_octfluid.io.dicom.read_dicom_source`), atomically.

    ``algorithm_type``: SEMIAUTOMATIC (the default: octfluid's prediction, reviewed and corrected by a person),
    AUTOMATIC or MANUAL. ``slice_thickness_mm``: the SEG's Slice Thickness where the source records none
    (:func:`~napari_octfluid.io.dicom.seg_slice_thickness`); None: the source's Pixel Measures as they are.

    Raises
    ------
    ExportError
        Where the mask does not match the source's B-scans, or the source cannot be referenced frame by frame.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid
    from pydicom.valuerep import format_number_as_ds

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    if len(source_headers) != 1:
        raise ExportError(
            f"the source is a series of {len(source_headers)} files, one per B-scan, which a DICOM SEG cannot "
            "reference through highdicom (it places B-scans only within one multi-frame file): export NIfTI instead."
        )
    source = source_headers[0]
    frames = int(source.get("NumberOfFrames", 1) or 1)
    expected = (frames, int(source.Rows), int(source.Columns))
    if labels.shape != expected:
        raise ExportError(
            f"the mask has shape {labels.shape} but the source DICOM holds {expected[0]} B-scans of "
            f"{expected[1]} x {expected[2]}: give the scan the mask was made from."
        )
    from highdicom.spatial import get_image_coordinate_system

    if frames > 1 and get_image_coordinate_system(source) is None:
        raise ExportError(
            "the source DICOM places its B-scans in no patient coordinates (no Frame of Reference with Plane "
            "Position (Patient)), which a DICOM SEG of several B-scans needs: export NIfTI instead."
        )
    algorithm = None
    if algorithm_type != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name="octfluid", version=__version__, family=codes.cid7162.ArtificialIntelligence
        )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="fluid",
        segmented_property_category=codes.cid7150.BodySubstance,
        segmented_property_type=codes.SCT.BodyFluid,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues[algorithm_type],
        algorithm_identification=algorithm,
        anatomic_regions=[codes.SCT.Retina],
    )
    seg = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=fluid_mask(labels).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="octfluid",
        manufacturer_model_name="octfluid",
        software_versions=__version__,
        device_serial_number="none",
        content_label="FLUID",
        content_description="Retinal fluid segmented by octfluid",
        omit_empty_frames=False,  # one SEG frame per B-scan, as the source: simplest for viewers to pair them
    )
    if slice_thickness_mm is not None:
        # set on the SEG written: highdicom takes the source's Pixel Measures over any given with the same spacing
        shared = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        if "SliceThickness" not in shared:
            shared.SliceThickness = format_number_as_ds(float(slice_thickness_mm))
    with atomic_path(path) as temporary:
        seg.save_as(temporary, enforce_file_format=True)
    return path
