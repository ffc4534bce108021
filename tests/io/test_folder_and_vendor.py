"""A folder of B-scan images and the vendors' own files, read as volumes with their spacing."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_octfluid.io import OctReadError, read_volume


def test_folder_of_pngs_in_natural_order(tmp_path):
    for index in (1, 2, 10):  # B10 must come after B2, as a person numbers them
        iio.imwrite(tmp_path / f"B{index}.png", np.full((20, 30), index, np.uint8))
    (tmp_path / "notes.txt").write_text("not a B-scan")
    volume = read_volume(tmp_path)
    assert volume.data.shape == (3, 20, 30)
    assert [int(b[0, 0]) for b in volume.data] == [1, 2, 10]
    assert volume.meta["files"] == ["B1.png", "B2.png", "B10.png"]


def test_folder_of_grey_rgb_pngs_reads_as_grey(tmp_path):
    grey = np.arange(600, dtype=np.uint8).reshape(20, 30)
    for index in range(2):
        iio.imwrite(tmp_path / f"b{index}.png", np.stack([grey] * 3, axis=-1))
    np.testing.assert_array_equal(read_volume(tmp_path).data[1], grey)


def test_folder_of_tiffs(tmp_path):
    for index in range(3):
        tifffile.imwrite(tmp_path / f"scan_{index:03d}.tif", np.full((8, 9), index, np.uint16))
    volume = read_volume(tmp_path)
    assert volume.data.shape == (3, 8, 9) and volume.data.dtype == np.uint16


def test_heyex_vol_line_scan_with_spacing(vendor_samples):
    volume = read_volume(vendor_samples / "heyex_vol" / "octolyzer_Linescan_1.vol")
    assert volume.data.shape == (1, 496, 768) and volume.source_ndim == 2
    # eyepy reads 3.87 um axial, 11.82 um lateral; a single line has no B-scan distance
    assert volume.spacing_mm[0] is None
    assert volume.spacing_mm[1:] == pytest.approx((0.00387, 0.01182), rel=1e-3)
    assert volume.meta["laterality"] == "OD"
    assert volume.meta["device"] == "Heidelberg Engineering"


def test_heyex_vol_volume(vendor_samples, caplog):
    volume = read_volume(vendor_samples / "heyex_vol" / "eyepy_test_volume.vol")
    # eyepy's warning about retinal layers octfluid never reads reached stderr on every .vol, batch rows too
    assert not [record for record in caplog.records if "less layers than expected" in record.getMessage()]
    assert volume.data.shape == (10, 40, 50)
    assert volume.spacing_mm == pytest.approx((0.03144, 0.003872, 0.011819), rel=1e-3)


@pytest.mark.parametrize("target", ["test_dummy.xml", "."])
def test_heyex_xml_export_by_file_or_folder(vendor_samples, target):
    volume = read_volume(vendor_samples / "heyex_xml" / target)
    assert volume.data.shape == (10, 40, 50)
    assert volume.spacing_mm == pytest.approx((0.03144, 0.003872, 0.011819), rel=1e-3)
    assert volume.meta["format"] == "Heidelberg HEYEX XML export"


def test_circular_scan_is_refused_with_a_reason(vendor_samples):
    with pytest.raises(OctReadError, match="octolyzer_Peripapillary_1.vol: could not be read .*Circular"):
        read_volume(vendor_samples / "heyex_vol" / "octolyzer_Peripapillary_1.vol")


def test_real_duke_scan_and_mask(shared_data):
    scan = read_volume(shared_data / "duke_dme" / "Subject_02_images.tif")
    mask = read_volume(shared_data / "duke_dme" / "Subject_02_fluid_grader1.tif")
    assert scan.data.shape == mask.data.shape == (11, 496, 768)
    assert not scan.is_labels and mask.is_labels
    assert scan.meta["bscan_indices"][5] == 30
    assert scan.spacing_mm == (None, None, None)  # the export holds no spacing: never guessed


def _eyepy_e2e_volume(laterality: str):
    """What eyepy 0.21's .e2e reader returns (HeE2eReader / E2ESeriesStructure.get_meta): scale 1 on every axis in
    'px', and the laterality as the ASCII code of R or L."""
    import eyepy
    from eyepy.core.eyemeta import EyeBscanMeta, EyeVolumeMeta

    bscans = [EyeBscanMeta(start_pos=(0, i), end_pos=(29, i), pos_unit="px") for i in range(3)]
    meta = EyeVolumeMeta(
        scale_z=1, scale_x=1, scale_y=1, scale_unit="px", bscan_meta=bscans, laterality=laterality, visit_date=None
    )
    return eyepy.EyeVolume(data=np.random.default_rng(0).random((3, 20, 30)).astype(np.float32), meta=meta)


@pytest.mark.parametrize("laterality, eye", [("82", "OD"), ("76", "OS")])
def test_heyex_e2e_opens_with_unknown_spacing(tmp_path, monkeypatch, laterality, eye):
    # eyepy ships no .e2e test file and none could be made here: its reader is replaced by what it returns, so the
    # decision is tested, not the decoding of a real .e2e file
    import eyepy

    monkeypatch.setattr(eyepy, "import_heyex_e2e", lambda path: _eyepy_e2e_volume(laterality))
    path = tmp_path / "macula.e2e"
    path.write_bytes(b"CMDb" + bytes(60))
    volume = read_volume(path)
    assert volume.data.shape == (3, 20, 30)
    assert volume.spacing_mm == (None, None, None)  # never eyepy's 1 px taken for millimetres
    assert volume.meta["spacing_source"].startswith("unknown") and "Quantify" in volume.meta["spacing_source"]
    assert volume.meta["laterality"] == eye and volume.meta["format"] == "Heidelberg HEYEX .e2e"


def test_vendor_spacing_in_an_unknown_unit_is_refused(tmp_path, monkeypatch):
    import eyepy

    in_degrees = _eyepy_e2e_volume("82")
    in_degrees.meta["scale_unit"] = "°"
    monkeypatch.setattr(eyepy, "import_heyex_e2e", lambda path: in_degrees)
    path = tmp_path / "macula.e2e"
    path.write_bytes(b"CMDb" + bytes(60))
    with pytest.raises(OctReadError, match="macula.e2e: gives its spacing in '°'"):
        read_volume(path)
