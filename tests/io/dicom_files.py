"""Small valid DICOM OCT files (Ophthalmic Tomography Image Storage, DICOM PS3.3 A.41) built with pydicom for the
tests: the modules and functional groups a device export carries, with the pixels and geometry each test chooses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

OPT = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def opt_dataset(
    pixels: np.ndarray,
    *,
    series_uid: str | None = None,
    instance_number: int = 1,
    pixel_spacing: tuple[float, float] | None = (0.0039, 0.0117),
    slice_thickness: float | None = 0.047,
    spacing_between: float | None = None,
    position_step: float | None = None,
    first_position: float = 0.0,
    per_frame_measures: bool = False,
    laterality: str = "R",
    sop_class: str = OPT,
    frame_of_reference: str | None = None,
) -> FileDataset:
    """An OPT instance holding ``pixels`` ([frames,] rows, columns), uint8 or uint16 MONOCHROME2.

    ``position_step`` adds a Frame of Reference, Plane Orientation (Patient) and per-frame Plane Position
    (Patient) ``position_step`` mm apart (as OCT-Converter writes them); ``per_frame_measures`` puts the Pixel
    Measures in every frame's group instead of the Shared one.
    """
    pixels = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("opt.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    # Patient, General Study, General Series / OPT Series, General and Enhanced Equipment
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Eye", "OCT-0001", "", ""
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = STUDY_UID, "20240102", "101500", "1"
    ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
    ds.SeriesInstanceUID, ds.SeriesNumber = series_uid or generate_uid(), 3
    ds.Modality = "OPT" if sop_class == OPT else "CT"
    ds.Manufacturer, ds.ManufacturerModelName = "Carl Zeiss Meditec", "Cirrus HD-OCT 5000"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "4000-1234", "11.5"
    # Multi-frame Functional Groups, OPT Image, Ocular Region Imaged
    ds.InstanceNumber, ds.ContentDate, ds.ContentTime = instance_number, "20240102", "101500"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionDateTime, ds.AcquisitionNumber = "20240102101503.25", 1
    ds.ImageLaterality = laterality
    ds.AnatomicRegionSequence = [_code("5665001", "SCT", "Retina")]
    ds.PresentationLUTShape, ds.BurnedInAnnotation, ds.LossyImageCompression = "IDENTITY", "NO", "00"
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis]
    ds.set_pixel_data(frames, "MONOCHROME2", 8 * pixels.dtype.itemsize)
    ds.NumberOfFrames = len(frames)
    measures = Dataset()
    if pixel_spacing is not None:
        measures.PixelSpacing = list(pixel_spacing)
    if slice_thickness is not None:
        measures.SliceThickness = slice_thickness
    if spacing_between is not None:
        measures.SpacingBetweenSlices = spacing_between
    shared = Dataset()
    anatomy = Dataset()
    anatomy.FrameLaterality = laterality
    anatomy.AnatomicRegionSequence = [_code("5665001", "SCT", "Retina")]
    shared.FrameAnatomySequence = [anatomy]
    if not per_frame_measures:
        shared.PixelMeasuresSequence = [measures]
    if position_step is not None:
        ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
        ds.PositionReferenceIndicator = ""
        orientation = Dataset()
        orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        shared.PlaneOrientationSequence = [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for index in range(len(frames)):
        group = Dataset()
        content = Dataset()
        content.InStackPositionNumber, content.StackID = index + 1, "1"
        group.FrameContentSequence = [content]
        if per_frame_measures:
            group.PixelMeasuresSequence = [measures]
        if position_step is not None:
            position = Dataset()
            position.ImagePositionPatient = [0, 0, first_position + index * position_step]
            group.PlanePositionSequence = [position]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    return ds


def write(ds: FileDataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, volume: np.ndarray, names=None, **kwargs) -> list[Path]:
    """One OPT file per B-scan of ``volume`` in ``folder``, numbered 1.. in B-scan order; ``names`` may shuffle the
    file names so that only the Instance Numbers give the order."""
    folder.mkdir(exist_ok=True)
    series_uid = kwargs.pop("series_uid", None) or generate_uid()
    names = names or [f"b{index:03d}.dcm" for index in range(len(volume))]
    return [
        write(opt_dataset(bscan, series_uid=series_uid, instance_number=index + 1, **kwargs), folder / name)
        for index, (bscan, name) in enumerate(zip(volume, names))
    ]
