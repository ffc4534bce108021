"""Writing a scan or labels with its spacing and reading it back gives the same array and the same spacing."""

import numpy as np
import pytest
import tifffile

from napari_octfluid.io import read_volume, write_tiff

SPACINGS = [
    (0.12, 0.0039, 0.0118),  # all known
    (None, 0.0039, 0.0118),  # single-line scans: no B-scan distance
    (None, None, None),  # an export that lost its spacing
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_volume_roundtrip_keeps_pixels_and_spacing(tmp_path, dtype, spacing):
    rng = np.random.default_rng(0)
    data = (rng.random((4, 30, 40)) * 200).astype(dtype)
    path = write_tiff(tmp_path / "scan.tif", data, spacing, {"laterality": "OS"}, kind="image")
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, data)
    assert volume.data.dtype == dtype
    assert volume.spacing_mm == spacing  # stored exactly, unknown axes included
    assert volume.meta["laterality"] == "OS"
    assert volume.source_ndim == 3
    assert not volume.is_labels


def test_single_bscan_stays_2d(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    labels[5:9, 10:20] = 1
    volume = read_volume(write_tiff(tmp_path / "mask.tif", labels, (None, 0.004, 0.012)))
    assert volume.data.shape == (1, 20, 30) and volume.source_ndim == 2
    np.testing.assert_array_equal(volume.as_source_shape(volume.data), labels)
    assert volume.is_labels
    assert volume.scale_um() == pytest.approx((1.0, 4.0, 12.0))
    assert volume.units() == ("pixel", "micrometer", "micrometer")


def test_labels_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    write_tiff(tmp_path / "m.tif", np.ones((2, 5, 5), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]


def test_spacing_from_ome_metadata(tmp_path):
    path = tmp_path / "scan.ome.tif"
    data = np.zeros((3, 16, 24), np.uint16)
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeZ": 0.12,
            "PhysicalSizeZUnit": "mm",
            "PhysicalSizeY": 3.87,
            "PhysicalSizeYUnit": "µm",
            "PhysicalSizeX": 11.82,
            "PhysicalSizeXUnit": "µm",
        },
    )
    volume = read_volume(path)
    assert volume.meta["format"] == "OME-TIFF"
    assert volume.spacing_mm == pytest.approx((0.12, 0.00387, 0.01182))


def test_spacing_from_foreign_imagej_file(tmp_path):
    path = tmp_path / "fiji.tif"
    # as Fiji writes it: pixels per micron in the resolution tags, slice spacing in the description
    tifffile.imwrite(
        path,
        np.zeros((5, 16, 24), np.uint8),
        imagej=True,
        resolution=(1 / 11.82, 1 / 3.87),
        metadata={"spacing": 120.0, "unit": "micron", "axes": "ZYX"},
    )
    assert read_volume(path).spacing_mm == pytest.approx((0.12, 0.00387, 0.01182))


def test_spacing_from_resolution_tags_in_centimetres(tmp_path):
    path = tmp_path / "plain.tif"
    # 1 cm / 2500 px = 4 um per pixel across, 1 cm / 1000 px = 10 um per pixel down
    tifffile.imwrite(path, np.zeros((16, 24), np.uint8), resolution=(2500, 1000), resolutionunit="CENTIMETER")
    volume = read_volume(path)
    assert volume.spacing_mm[0] is None
    assert volume.spacing_mm[1:] == pytest.approx((0.01, 0.004))


def test_tiff_without_spacing_says_unknown(tmp_path):
    path = tmp_path / "nospacing.tif"
    tifffile.imwrite(path, np.zeros((2, 16, 24), np.uint8))
    volume = read_volume(path)
    assert volume.spacing_mm == (None, None, None)
    assert volume.meta["spacing_source"] == "unknown"
    assert volume.scale_um() == (1.0, 1.0, 1.0)


def test_a_volume_of_2000_bscans_is_memory_mapped_not_read(tmp_path, monkeypatch):
    import napari_octfluid.io.tiff as tiff_module

    volume = np.random.default_rng(0).integers(0, 255, (2000, 32, 48), dtype=np.uint8)
    path = write_tiff(tmp_path / "long.tif", volume, (0.01, 0.004, 0.01), kind="image")
    tifffile.imwrite(tmp_path / "plain.tif", volume, imagej=True)  # uncompressed, contiguous
    monkeypatch.setattr(tiff_module, "MEMMAP_BYTES", volume.nbytes)
    read = read_volume(tmp_path / "plain.tif")
    assert read.data.shape == (2000, 32, 48)
    assert isinstance(read.data, np.memmap) or isinstance(read.data.base, np.memmap)
    assert not read.data.flags.writeable  # read-only: nothing can change the user's file through it
    np.testing.assert_array_equal(read.data[1234], volume[1234])
    assert read_volume(path).data.shape == (2000, 32, 48)  # compressed files are read as before


@pytest.mark.parametrize("dpi", [72, 96, 300])
def test_a_print_resolution_in_dots_per_inch_is_no_spacing(tmp_path, dpi):
    """PIL, Photoshop and ImageMagick write 72-300 dpi into any TIFF: read as 84.7-353 um a pixel, it resampled a
    B-scan 22 times in depth and gave 505 mm^2 of fluid in one B-scan."""
    path = tmp_path / "printed.tif"
    tifffile.imwrite(path, np.zeros((16, 24), np.uint8), resolution=(dpi, dpi), resolutionunit="INCH")
    assert read_volume(path).spacing_mm == (None, None, None)
    fiji = tmp_path / "fiji_inch.tif"  # Fiji, after opening such a file, writes the inch as ImageJ's unit
    tifffile.imwrite(
        fiji, np.zeros((2, 16, 24), np.uint8), imagej=True, resolution=(dpi, dpi), metadata={"unit": "inch"}
    )
    assert read_volume(fiji).spacing_mm == (None, None, None)


def test_a_stated_spacing_that_is_no_octs_is_left_unknown_and_said(tmp_path):
    path = tmp_path / "odd.tif"
    # 1 cm / 2 px = 5 mm a pixel down (no OCT's), 1 cm / 1000 px = 10 um across (an OCT's)
    tifffile.imwrite(path, np.zeros((16, 24), np.uint8), resolution=(1000, 2), resolutionunit="CENTIMETER")
    volume = read_volume(path)
    assert volume.spacing_mm[:2] == (None, None) and volume.spacing_mm[2] == pytest.approx(0.01)
    assert "5000 um is not an OCT pixel size along depth" in volume.meta["spacing_source"]


def test_bscans_written_as_separate_series_are_all_read(tmp_path):
    """`TiffWriter.write` once per B-scan leaves a series per page: only the first was read, the scan became one
    B-scan, with no word."""
    bscans = np.random.default_rng(0).integers(0, 255, (3, 16, 24), np.uint8)
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as writer:
        for bscan in bscans:
            writer.write(bscan, photometric="minisblack", contiguous=False)
    assert len(tifffile.TiffFile(path).series) == 3
    np.testing.assert_array_equal(read_volume(path).data, bscans)
