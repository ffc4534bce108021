"""Masks exported for other software and read back with that software's own libraries: NIfTI through nibabel
(spacing, orientation, values) and DICOM SEG through highdicom/pydicom (frames, segment, referenced series), by the
library functions, the command line and the napari writer."""

import nibabel as nib
import numpy as np
import pydicom
import pytest
import scipy.io
from dicom_files import opt_dataset, write, write_series

import napari_octfluid
from napari_octfluid.cli import main
from napari_octfluid.io import ExportError, write_dicom_seg, write_nifti, write_tiff
from napari_octfluid.io.dicom import read_dicom_source
from napari_octfluid.io.export import nifti_affine

SPACING = (0.12, 0.0039, 0.0117)  # B-scan, depth, width (mm)
SCAN = np.random.default_rng(3).integers(16, 255, (4, 16, 20), dtype=np.uint8)
LABELS = np.zeros((4, 16, 20), np.uint8)
LABELS[1, 3:6, 4:9] = 1
LABELS[2, 8:12, 10:15] = 1
LABELS[3, :, :2] = 255  # not annotated: kept in NIfTI, not fluid in the SEG


def read_nifti(path):
    image = nib.load(path)
    return image, np.asarray(image.dataobj)


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.nii"])
def test_nifti_round_trip_keeps_values_spacing_and_axes(tmp_path, name):
    path = write_nifti(tmp_path / name, LABELS, SPACING)
    image, data = read_nifti(path)
    # i = width, j = depth, k = B-scan
    assert data.shape == (20, 16, 4) and data.dtype == np.uint8
    np.testing.assert_array_equal(data.transpose(2, 1, 0), LABELS)
    assert image.header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.12))
    assert image.header.get_xyzt_units()[0] == "mm"
    np.testing.assert_allclose(image.affine, nifti_affine(SPACING))
    # first A-scan at the left and depth downwards in a radiological view: i runs to the patient's left, j backwards
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
    assert image.header.get_intent()[0] == "label"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left beside it


def test_nifti_gz_is_reproducible(tmp_path):
    first = write_nifti(tmp_path / "a.nii.gz", LABELS, SPACING).read_bytes()
    assert write_nifti(tmp_path / "b.nii.gz", LABELS, SPACING).read_bytes() == first


def test_nifti_refuses_an_unknown_spacing(tmp_path):
    with pytest.raises(ExportError, match="spacing along B-scan is unknown"):
        write_nifti(tmp_path / "mask.nii.gz", LABELS, (None, 0.0039, 0.0117))
    assert not list(tmp_path.iterdir())


@pytest.fixture
def dicom_scan(tmp_path):
    """A multi-frame DICOM OCT whose B-scans lie in patient coordinates (what a SEG places its frames by)."""
    return write(opt_dataset(SCAN, position_step=0.12), tmp_path / "oct.dcm")


def test_dicom_seg_round_trip(tmp_path, dicom_scan):
    import highdicom as hd

    source = pydicom.dcmread(dicom_scan)
    path = write_dicom_seg(tmp_path / "fluid.dcm", LABELS, read_dicom_source(dicom_scan).headers)
    seg = hd.seg.segread(path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert int(seg.NumberOfFrames) == 4  # one frame per B-scan
    [segment] = seg.SegmentSequence
    assert segment.SegmentLabel == "fluid" and segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "32457005"  # SNOMED CT: body fluid
    # it refers to the source: same patient and study, its series, its instance
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == (
        source.SOPInstanceUID
    )
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID
    frames = seg.get_pixels_by_source_frame(source.SOPInstanceUID, [1, 2, 3, 4], combine_segments=True)
    np.testing.assert_array_equal(frames, (LABELS == 1).astype(frames.dtype))
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_dicom_seg_refuses_a_mask_of_another_shape(tmp_path, dicom_scan):
    with pytest.raises(ExportError, match="the mask has shape \\(3, 16, 20\\) but the source DICOM holds 4 B-scans"):
        write_dicom_seg(tmp_path / "fluid.dcm", LABELS[:3], read_dicom_source(dicom_scan).headers)


def test_dicom_seg_refuses_a_source_without_patient_coordinates(tmp_path):
    path = write(opt_dataset(SCAN), tmp_path / "oct.dcm")
    with pytest.raises(ExportError, match="no patient coordinates.*export NIfTI instead"):
        write_dicom_seg(tmp_path / "fluid.dcm", LABELS, read_dicom_source(path).headers)
    assert not (tmp_path / "fluid.dcm").exists()


def test_dicom_seg_refuses_a_series_of_one_file_per_bscan(tmp_path):
    write_series(tmp_path / "series", SCAN, position_step=0.12)
    with pytest.raises(ExportError, match="series of 4 files"):
        write_dicom_seg(tmp_path / "fluid.dcm", LABELS, read_dicom_source(tmp_path / "series").headers)


# the command line


def test_cli_exports_nifti_with_the_mask_spacing(tmp_path, capsys):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, SPACING, kind="labels")
    assert main(["export", str(mask), "-o", str(tmp_path / "mask.nii.gz")]) == 0
    image, data = read_nifti(tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(data.transpose(2, 1, 0), LABELS)
    assert image.header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.12))
    assert "wrote" in capsys.readouterr().out


def test_cli_nifti_needs_a_spacing_and_takes_one(tmp_path, capsys):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, (None, None, None), kind="labels")
    out = tmp_path / "mask.nii.gz"
    assert main(["export", str(mask), "-o", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--spacing Z Y X" in error and not out.exists()
    assert main(["export", str(mask), "-o", str(out), "--spacing", "120", "3.9", "11.7"]) == 0
    assert read_nifti(out)[0].header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.12))


def test_cli_nifti_takes_the_spacing_of_the_source_scan(tmp_path, dicom_scan):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, (None, None, None), kind="labels")
    out = tmp_path / "mask.nii"
    assert main(["export", str(mask), "-o", str(out), "--source", str(dicom_scan)]) == 0
    assert read_nifti(out)[0].header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.12))


def test_cli_nifti_says_when_the_source_records_another_spacing_than_the_mask(tmp_path, dicom_scan, capsys):
    """The mask's spacing wins over --source's, as the help says; where the two differ it went unsaid."""
    mask = write_tiff(tmp_path / "mask.tif", LABELS, (0.24, 0.0039, 0.0117), kind="labels")
    out = tmp_path / "mask.nii"
    assert main(["export", str(mask), "-o", str(out), "--source", str(dicom_scan)]) == 0
    assert read_nifti(out)[0].header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.24))
    err = capsys.readouterr().err
    assert "oct.dcm records another spacing (between B-scans 120 um) than the one used, 240 um" in err
    assert (
        main(
            [
                "export",
                str(mask),
                "-o",
                str(tmp_path / "again.nii"),
                "--source",
                str(dicom_scan),
                "--spacing",
                "120",
                "3.9",
                "11.7",
            ]
        )
        == 0
    )
    assert "records another spacing" not in capsys.readouterr().err  # the typed one agrees with the source


def test_cli_exports_dicom_seg_of_the_source(tmp_path, dicom_scan, capsys):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, SPACING, kind="labels")
    out = tmp_path / "fluid_seg.dcm"
    assert main(["export", str(mask), "-o", str(out), "--source", str(dicom_scan)]) == 0
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG" and int(seg.NumberOfFrames) == 4
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pydicom.dcmread(dicom_scan).SeriesInstanceUID
    assert "fluid in 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, phrase",
    [
        (["-o", "{tmp}/fluid.dcm"], "give it with --source SCAN"),
        (["-o", "{tmp}/mask.txt"], "give a name ending in .nii.gz or .nii (NIfTI) or .dcm"),
        (["-o", "{tmp}/oct.dcm", "--source", "{tmp}/oct.dcm"], "is also an input"),
        (["-o", "{tmp}/fluid.dcm", "--source", "{tmp}/mask.tif"], "refers to a DICOM OCT file or folder"),
        (["-o", "{tmp}/out.nii", "--grader", "1"], "--grader is for a Duke DME .mat mask only"),
    ],
    ids=["seg without source", "unknown format", "overwrite input", "non-DICOM source", "grader of a TIFF"],
)
def test_cli_refuses_in_one_line(tmp_path, capsys, arguments, phrase):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, SPACING, kind="labels")
    before = mask.read_bytes()
    assert main(["export", str(mask), *[a.format(tmp=tmp_path) for a in arguments]]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and phrase in error, error
    assert mask.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif"]


def test_cli_refuses_intensities(tmp_path, capsys):
    scan = write_tiff(tmp_path / "scan.tif", SCAN, SPACING, kind="image")
    assert main(["export", str(scan), "-o", str(tmp_path / "scan.nii.gz")]) == 1
    assert "holds OCT intensities, not labels" in capsys.readouterr().err


def test_cli_refuses_a_dicom_seg_from_a_source_without_coordinates(tmp_path, capsys):
    mask = write_tiff(tmp_path / "mask.tif", LABELS, SPACING, kind="labels")
    source = write(opt_dataset(SCAN), tmp_path / "oct.dcm")
    assert main(["export", str(mask), "-o", str(tmp_path / "fluid.dcm"), "--source", str(source)]) == 1
    assert "fluid.dcm: the source DICOM places its B-scans in no patient coordinates" in capsys.readouterr().err


def test_cli_exports_a_duke_grader(tmp_path):
    fluid = np.full((16, 20, 4), np.nan)
    fluid[:, :, 1] = 0
    fluid[3:6, 4:9, 1] = 2
    images = SCAN.transpose(1, 2, 0)
    scipy.io.savemat(tmp_path / "Subject_01.mat", {"images": images, "manualFluid1": fluid, "manualFluid2": fluid})
    out = tmp_path / "grader1.nii.gz"
    spacing = ["--spacing", "120", "3.9", "11.7"]
    assert main(["export", str(tmp_path / "Subject_01.mat"), "-o", str(out), "--grader", "1", *spacing]) == 0
    data = read_nifti(out)[1].transpose(2, 1, 0)
    assert (data[0] == 255).all() and data[1, 4, 5] == 1 and data[1, 0, 0] == 0


def test_napari_nifti_writer_keeps_the_layer_spacing(tmp_path):
    from napari_octfluid._writer import write_labels_nifti

    metadata = {"octfluid": {"spacing_mm": list(SPACING)}}
    [written] = write_labels_nifti(str(tmp_path / "layer.nii.gz"), LABELS, {"metadata": metadata})
    image, data = read_nifti(written)
    np.testing.assert_array_equal(data.transpose(2, 1, 0), LABELS)
    assert image.header.get_zooms() == pytest.approx((0.0117, 0.0039, 0.12))


def test_napari_nifti_writer_says_what_to_do_without_spacing(tmp_path):
    from napari_octfluid._writer import write_labels_nifti

    with pytest.raises(ValueError, match="octfluid export MASK.tif --spacing Z Y X -o layer.nii.gz"):
        write_labels_nifti(str(tmp_path / "layer.nii.gz"), LABELS, {"metadata": {}})


def test_seg_names_octfluid_and_its_version(tmp_path, dicom_scan):
    seg = pydicom.dcmread(write_dicom_seg(tmp_path / "f.dcm", LABELS, read_dicom_source(dicom_scan).headers))
    assert seg.Manufacturer == "octfluid" and seg.SoftwareVersions == napari_octfluid.__version__


def test_a_dicom_seg_of_a_source_without_slice_thickness_is_read_back_by_highdicom(tmp_path, capsys):
    """highdicom wrote the SEG with the source's Pixel Measures, and its own reader refused them without a Slice
    Thickness; the B-scan distance the source records is now the SEG's."""
    import highdicom as hd

    source = write(opt_dataset(SCAN, slice_thickness=None, position_step=0.12), tmp_path / "oct.dcm")
    mask = write_tiff(tmp_path / "mask.tif", LABELS, SPACING)
    assert main(["export", str(mask), "-o", str(tmp_path / "fluid.dcm"), "--source", str(source)]) == 0
    seg = hd.seg.segread(tmp_path / "fluid.dcm")
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == pytest.approx(0.12)
    assert [float(v) for v in measures.PixelSpacing] == pytest.approx([0.0039, 0.0117])
    frames = seg.get_pixels_by_source_frame(pydicom.dcmread(source).SOPInstanceUID, [1, 2, 3, 4], combine_segments=True)
    np.testing.assert_array_equal(frames, (LABELS == 1).astype(frames.dtype))
