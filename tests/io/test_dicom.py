"""DICOM OCT (Ophthalmic Tomography Image Storage) read through pydicom: multi-frame files and one-file-per-B-scan
series, the spacing from the Pixel Measures and frame positions, laterality, device and date; non-OCT and damaged
files refused in one line. Every file is built here with pydicom (dicom_files.py)."""

import numpy as np
import pytest
import tifffile
from dicom_files import CT, opt_dataset, write, write_series
from pydicom.uid import RLELossless

from napari_octfluid.io import OctReadError, read_volume
from napari_octfluid.io.errors import ScanTooLargeError
from napari_octfluid.memory import set_memory_limit

VOLUME = np.random.default_rng(0).integers(16, 255, (4, 16, 20), dtype=np.uint8)


@pytest.fixture
def memory_limit():
    yield set_memory_limit
    set_memory_limit(None)


def test_multiframe_file_with_spacing_laterality_device_and_date(tmp_path):
    volume = read_volume(write(opt_dataset(VOLUME), tmp_path / "cirrus.dcm"))
    np.testing.assert_array_equal(volume.data, VOLUME)
    assert volume.source_ndim == 3 and not volume.is_labels
    # Pixel Spacing is (row, column) = (depth, width); the B-scan distance is the Slice Thickness here
    assert volume.spacing_mm == pytest.approx((0.047, 0.0039, 0.0117))
    assert "Slice Thickness" in volume.meta["spacing_source"]
    assert volume.meta["format"] == "DICOM OCT"
    assert volume.meta["laterality"] == "OD"
    assert volume.meta["device"] == "Carl Zeiss Meditec Cirrus HD-OCT 5000"
    assert volume.meta["acquired"] == "2024-01-02 10:15:03"


def test_sixteen_bit_left_eye(tmp_path):
    pixels = VOLUME.astype(np.uint16) * 200
    volume = read_volume(write(opt_dataset(pixels, laterality="L"), tmp_path / "topcon.dcm"))
    assert volume.data.dtype == np.uint16
    np.testing.assert_array_equal(volume.data, pixels)
    assert volume.meta["laterality"] == "OS"


def test_frame_positions_give_the_bscan_distance_before_slice_thickness(tmp_path):
    path = write(opt_dataset(VOLUME, slice_thickness=0.5, position_step=0.12), tmp_path / "positions.dcm")
    volume = read_volume(path)
    assert volume.spacing_mm == pytest.approx((0.12, 0.0039, 0.0117))
    assert "Plane Position (Patient)" in volume.meta["spacing_source"]


def test_spacing_between_slices_before_slice_thickness(tmp_path):
    path = write(opt_dataset(VOLUME, slice_thickness=0.5, spacing_between=0.06), tmp_path / "between.dcm")
    assert read_volume(path).spacing_mm[0] == pytest.approx(0.06)


def test_per_frame_pixel_measures(tmp_path):
    path = write(opt_dataset(VOLUME, per_frame_measures=True), tmp_path / "per_frame.dcm")
    assert read_volume(path).spacing_mm == pytest.approx((0.047, 0.0039, 0.0117))


def test_bscan_distance_unknown_when_not_recorded(tmp_path):
    # as an export that locates its B-scans only on the fundus image (Plane Position (Ophthalmic)) would be
    volume = read_volume(write(opt_dataset(VOLUME, slice_thickness=None), tmp_path / "no_thickness.dcm"))
    assert volume.spacing_mm == pytest.approx((None, 0.0039, 0.0117))
    assert "not recorded" in volume.meta["spacing_source"]


def test_no_pixel_measures_at_all_is_unknown(tmp_path):
    path = write(opt_dataset(VOLUME, pixel_spacing=None, slice_thickness=None), tmp_path / "bare.dcm")
    volume = read_volume(path)
    assert volume.spacing_mm == (None, None, None)
    assert volume.meta["spacing_source"].startswith("unknown")


def test_unevenly_spaced_frames_are_no_distance(tmp_path):
    ds = opt_dataset(VOLUME, slice_thickness=None, position_step=0.1)
    ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence[0].ImagePositionPatient = [0, 0, 0.9]
    assert read_volume(write(ds, tmp_path / "uneven.dcm")).spacing_mm[0] is None


def test_single_bscan_file(tmp_path):
    volume = read_volume(write(opt_dataset(VOLUME[0]), tmp_path / "line.dcm"))
    assert volume.data.shape == (1, 16, 20) and volume.source_ndim == 2
    assert volume.spacing_mm[0] is None  # one B-scan has no distance to another


def test_rle_compressed_file(tmp_path):
    ds = opt_dataset(VOLUME)
    ds.compress(RLELossless)  # pydicom's own encoder: a compressed transfer syntax without extra packages
    np.testing.assert_array_equal(read_volume(write(ds, tmp_path / "rle.dcm")).data, VOLUME)


def test_monochrome1_is_inverted(tmp_path):
    ds = opt_dataset(VOLUME)
    ds.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_array_equal(read_volume(write(ds, tmp_path / "mono1.dcm")).data, 255 - VOLUME)


def test_series_of_one_file_per_bscan_in_instance_number_order(tmp_path):
    # the file names sort differently from the B-scans: only the Instance Numbers give the order
    write_series(tmp_path / "series", VOLUME, names=["c.dcm", "a.dcm", "d.dcm", "b.dcm"])
    volume = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(volume.data, VOLUME)
    assert volume.meta["files"] == ["c.dcm", "a.dcm", "d.dcm", "b.dcm"]
    assert volume.spacing_mm == pytest.approx((0.047, 0.0039, 0.0117))


def test_series_without_instance_numbers_sorted_by_position(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    for index, name in zip(range(4), ["d", "b", "a", "c"]):
        ds = opt_dataset(VOLUME[index], series_uid="1.2.3.4", position_step=0.1, first_position=0.1 * index)
        del ds.InstanceNumber
        write(ds, folder / f"{name}.dcm")
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.data, VOLUME)
    assert volume.spacing_mm[0] == pytest.approx(0.1)


def test_series_named_without_extension_found_by_their_preamble(tmp_path):
    write_series(tmp_path / "export", VOLUME, names=[f"IM{index:06d}" for index in range(4)])
    np.testing.assert_array_equal(read_volume(tmp_path / "export").data, VOLUME)


def test_file_named_by_its_uid_is_read(tmp_path):
    path = write(opt_dataset(VOLUME), tmp_path / "1.2.840.113619.2.55")
    np.testing.assert_array_equal(read_volume(path).data, VOLUME)


def test_series_ignores_non_oct_files_beside_it(tmp_path):
    folder = tmp_path / "export"
    write_series(folder, VOLUME)
    write(opt_dataset(VOLUME[0], sop_class=CT), folder / "zz_other.dcm")
    assert read_volume(folder).n_bscans == 4


@pytest.mark.parametrize(
    "break_series, phrase",
    [
        (lambda folder: write(opt_dataset(VOLUME[0], instance_number=9), folder / "other.dcm"), "mixes 2 DICOM OCT"),
        (
            lambda folder: write(
                opt_dataset(np.zeros((8, 20), np.uint8), series_uid="1.2.3", instance_number=9), folder / "small.dcm"
            ),
            "different Rows",
        ),
    ],
    ids=["two series", "two sizes"],
)
def test_mixed_series_are_refused(tmp_path, break_series, phrase):
    folder = tmp_path / "mixed"
    write_series(folder, VOLUME, series_uid="1.2.3")
    break_series(folder)
    with pytest.raises(OctReadError, match=phrase) as caught:
        read_volume(folder)
    assert str(caught.value).startswith("mixed:") and "\n" not in str(caught.value)


def test_series_with_repeated_instance_numbers_and_no_positions_is_refused(tmp_path):
    folder = tmp_path / "unordered"
    folder.mkdir()
    for index in range(3):
        write(opt_dataset(VOLUME[index], series_uid="1.2.3", instance_number=1), folder / f"{index}.dcm")
    with pytest.raises(OctReadError, match="does not say the order of its B-scans"):
        read_volume(folder)


def test_ct_is_refused_in_one_line(tmp_path):
    path = write(opt_dataset(VOLUME[0], sop_class=CT), tmp_path / "chest.dcm")
    with pytest.raises(OctReadError) as caught:
        read_volume(path)
    message = str(caught.value)
    assert message.startswith("chest.dcm: is a DICOM CT Image Storage file (CT), not an OCT scan")
    assert "\n" not in message


def test_folder_of_ct_is_refused(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    for index in range(2):
        write(opt_dataset(VOLUME[index], sop_class=CT, instance_number=index + 1), folder / f"{index}.dcm")
    with pytest.raises(OctReadError, match="holds no DICOM OCT: its 2 DICOM files are CT Image Storage"):
        read_volume(folder)


def test_memory_budget_is_checked_before_decoding(tmp_path, memory_limit, monkeypatch):
    import napari_octfluid.io.dicom as dicom

    path = write(opt_dataset(VOLUME), tmp_path / "big.dcm")
    monkeypatch.setattr(dicom, "_frames_of", lambda file: pytest.fail("decoded before the memory check"))
    memory_limit(1000)  # the volume alone is 1280 bytes
    with pytest.raises(ScanTooLargeError, match="big.dcm: Decoding this scan \\(4 x 16 x 20 uint8\\)"):
        read_volume(path)


def test_truncated_pixels_are_refused(tmp_path):
    path = write(opt_dataset(VOLUME), tmp_path / "truncated.dcm")
    path.write_bytes(path.read_bytes()[:-700])
    with pytest.raises(OctReadError, match="truncated.dcm: "):
        read_volume(path)


def test_garbage_named_dcm_is_not_dicom(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\x00\x01 not dicom" * 40)
    with pytest.raises(OctReadError, match="garbage.dcm: is not a DICOM file"):
        read_volume(path)


def test_tiff_named_dcm_says_what_it_is(tmp_path):
    path = tmp_path / "scan.dcm"
    tifffile.imwrite(path, VOLUME, photometric="minisblack")
    with pytest.raises(OctReadError, match="has the extension of a DICOM file but is a TIFF file"):
        read_volume(path)
