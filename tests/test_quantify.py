"""Fluid area and volume from labels: phantoms with a known answer, and no figure from an unknown spacing."""

import numpy as np
import pytest

from napari_octfluid.labels import fluid_mask
from napari_octfluid.quantify import (
    SpacingUnknownError,
    fluid_pixels_per_bscan,
    fluid_volume_mm3,
    summarize_fluid,
    write_summary_csv,
)
from napari_octfluid.spacing import SpacingError, check_spacing


def box_phantom():
    labels = np.zeros((6, 50, 80), np.uint8)
    labels[1:4, 10:30, 20:60] = 1  # 3 B-scans x 20 rows x 40 columns
    return labels


def test_box_volume_is_exact():
    spacing = (0.12, 0.0039, 0.0118)
    expected = 3 * 0.12 * 20 * 0.0039 * 40 * 0.0118
    assert fluid_volume_mm3(box_phantom(), spacing) == pytest.approx(expected, rel=1e-12)


def test_summary_per_bscan_and_in_nanolitres():
    summary = summarize_fluid(box_phantom(), (0.1, 0.004, 0.01))
    np.testing.assert_array_equal(summary.pixels_per_bscan, [0, 800, 800, 800, 0, 0])
    np.testing.assert_allclose(summary.area_mm2_per_bscan, [0, 0.032, 0.032, 0.032, 0, 0])
    assert summary.volume_mm3 == pytest.approx(3 * 0.032 * 0.1)
    assert summary.volume_nl == pytest.approx(3 * 0.032 * 0.1 * 1000)


@pytest.mark.parametrize(
    "spacing, has_area", [((None, 0.004, 0.01), True), ((0.1, None, 0.01), False), ((None, None, None), False)]
)
def test_unknown_spacing_gives_no_physical_figure(spacing, has_area):
    summary = summarize_fluid(box_phantom(), spacing)
    assert summary.volume_mm3 is None and summary.volume_nl is None
    assert (summary.area_mm2_per_bscan is not None) == has_area
    with pytest.raises(SpacingUnknownError):
        fluid_volume_mm3(box_phantom(), spacing)


def test_multiclass_labels_count_every_fluid_class_or_the_chosen_ones():
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0, :2], labels[0, 1, :3] = 1, 2
    assert fluid_pixels_per_bscan(labels).tolist() == [5]
    assert fluid_pixels_per_bscan(labels, fluid_classes=(2,)).tolist() == [3]


@pytest.mark.parametrize(
    ("bscans", "dtype", "expected"),
    [
        ([[0, 1, 1, 255], [255, 255, 255, 255]], np.uint8, [2, 0]),  # 255 is "not annotated", never fluid
        ([[3, 7, 0, 0], [0, 0, 0, 0]], np.uint8, [2, 0]),  # any other class is fluid
        ([[1, 300, 255, 0], [1000, 0, 0, 0]], np.uint16, [2, 1]),  # wider types: only 255 is left out
        ([[True, False, True, True], [False, False, False, False]], bool, [3, 0]),  # a mask: True is fluid
    ],
)
def test_fluid_pixels_per_bscan_hand_counted(bscans, dtype, expected):
    labels = np.array(bscans, dtype)[:, None, :]  # two B-scans of one row each
    assert fluid_pixels_per_bscan(labels).tolist() == expected
    assert fluid_pixels_per_bscan(labels).tolist() == fluid_mask(labels).reshape(2, -1).sum(axis=1).tolist()


def test_single_bscan_and_wrong_dimensions():
    assert fluid_pixels_per_bscan(np.ones((3, 4), np.uint8)).tolist() == [12]
    with pytest.raises(ValueError, match="2D.*3D"):
        fluid_pixels_per_bscan(np.ones((2, 2, 3, 4), np.uint8))


def csv_table(path):
    """The table under the provenance block, as rows; and the block as a dict."""
    lines = path.read_text().splitlines()
    block = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# ") and ": " in line)
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    return block, rows


def test_csv_is_one_table_of_fluid_per_bscan_and_totals(tmp_path):
    path = write_summary_csv(tmp_path / "f.csv", summarize_fluid(box_phantom(), (None, 0.004, 0.01)))
    block, rows = csv_table(path)
    assert rows[0] == ["quantity", "bscan", "value", "unit"]
    assert ["fluid", "1", "800", "pixels"] in rows and ["fluid area", "1", "0.032", "mm2"] in rows
    assert ["fluid", "all", "2400", "pixels"] in rows and ["fluid area", "all", "0.096", "mm2"] in rows
    assert ["fluid volume", "all", "", "nL"] in rows  # unknown B-scan distance: left empty, never guessed
    assert all(len(row) == 4 for row in rows)  # one table: every row has the header's columns
    assert block["spacing (B-scan, depth, width)"] == "unknown, 4, 10 um"


def test_csv_reports_each_class_and_the_etdrs_sectors(tmp_path):
    labels = box_phantom()
    labels[2, 10:20, 20:60] = 2  # half of B-scan 2's box becomes class 2
    summary = summarize_fluid(labels, (0.1, 0.004, 0.01))
    assert summary.pixels_per_class[2].tolist() == [0, 0, 400, 0, 0, 0]
    _, rows = csv_table(write_summary_csv(tmp_path / "f.csv", summary, {"central": 0.25, "outside grid": 0.5}))
    assert ["class 2", "2", "400", "pixels"] in rows and ["class 2 area", "2", "0.016", "mm2"] in rows
    # 400 voxels of 0.1 x 0.004 x 0.01 mm = 0.0016 mm^3 = 1.6 nL; all fluid: 2400 voxels = 9.6 nL
    assert ["class 2 volume", "all", "1.6", "nL"] in rows and ["fluid volume", "all", "9.6", "nL"] in rows
    assert ["ETDRS central", "all", "250", "nL"] in rows


def test_csv_records_what_the_figures_come_from(tmp_path):
    from napari_octfluid import __version__
    from napari_octfluid.quantify import QuantifyProvenance

    provenance = QuantifyProvenance(
        labels="/d/m.tif",
        scan="/d/s.tif",
        model="octfluid-default",
        spacing_mm=(0.12, 0.0039, 0.0118),
        spacing_source="entered by the user",
        fovea="B-scan 5.0, A-scan 380.0 (given)",
        eye="OS",
    )
    summary = summarize_fluid(box_phantom(), (0.12, 0.0039, 0.0118))
    block, _ = csv_table(write_summary_csv(tmp_path / "f.csv", summary, None, provenance))
    assert block == {
        "labels": "/d/m.tif",
        "scan": "/d/s.tif",
        "model": "octfluid-default",
        "spacing (B-scan, depth, width)": "120, 3.9, 11.8 um",
        "spacing source": "entered by the user",
        "fovea": "B-scan 5.0, A-scan 380.0 (given)",
        "eye": "OS",
        "octfluid version": __version__,
    }


@pytest.mark.parametrize(
    "value, significant, text",
    [
        (0.0115, 4, "0.0115"),  # was 1.150e-02, cut off in the table
        (302.345, 4, "302.3"),
        (123456.7, 4, "123500"),
        (2400.0, 6, "2400"),
        (0.00001234, 4, "0.00001234"),
        (0.0, 4, "0"),
    ],
)
def test_numbers_are_readable_without_exponents(value, significant, text):
    from napari_octfluid.quantify import readable_number

    assert readable_number(value, significant) == text


def ellipsoid_phantom(semi_axes_mm, spacing_mm, shape):
    """Voxels whose centres lie inside an ellipsoid centred in the volume."""
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing_mm)], indexing="ij")
    inside = sum((g / a) ** 2 for g, a in zip(grids, semi_axes_mm)) <= 1
    return inside.astype(np.uint8)


def test_ellipsoid_volume_is_within_one_percent_of_the_analytic_value():
    spacing, semi_axes = (0.05, 0.0039, 0.0118), (1.2, 0.15, 0.9)  # a flattened cyst-like ellipsoid
    labels = ellipsoid_phantom(semi_axes, spacing, (60, 100, 180))
    analytic = 4 / 3 * np.pi * np.prod(semi_axes)
    assert fluid_volume_mm3(labels, spacing) == pytest.approx(analytic, rel=0.01)


@pytest.mark.parametrize(
    "spacing",
    [(0.12, 0.0039, 0.0118), (None, 0.0039, 0.0118), (None, None, None), (2.0, 0.1, 0.2), (0.001, 1e-4, 1e-4)],
)
def test_plausible_spacings_in_mm_pass_the_check(spacing):
    """A file's spacing (mm, as octfluid keeps it) obeys the rule a typed one does (napari_octfluid.spacing)."""
    assert check_spacing(spacing) == spacing


@pytest.mark.parametrize(
    "spacing, phrase",
    [
        ((-0.12, 0.0039, 0.0118), "between B-scans must be a number of micrometres above zero"),
        ((0.12, 0.0, 0.0118), "along depth must be a number of micrometres above zero"),
        ((0.12, float("nan"), 0.0118), "above zero, not nan"),
        ((0.12, 0.0039, float("inf")), "along width must be"),
        ((0.12, 3.9, 0.0118), "3900 um is not an OCT pixel size along depth; did you mean 3.9 um"),  # um stored as mm
        ((120.0, 0.0039, 0.0118), "120000 um is not an OCT pixel size between B-scans; did you mean 120 um"),
        ((0.12, "0.004", 0.0118), "must be a number"),
        ((0.12, 0.0039), "has 3 values"),
    ],
)
def test_impossible_spacings_are_refused_with_one_line(spacing, phrase):
    """Issue 21, silent nonsense 9: a negative spacing gave -215.78 nL, a zero one 0.00 nL with fluid present."""
    with pytest.raises(SpacingError) as refused:
        check_spacing(spacing)
    assert phrase in str(refused.value) and "\n" not in str(refused.value)


def test_csv_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """Issue 21: a full disk left a 0-byte CSV where the previous table was."""
    import errno

    import napari_octfluid.quantify as quantify

    table = tmp_path / "f.csv"
    table.write_text("previous table\n")
    real_writer = quantify.csv.writer

    def full_disk(handle):
        writer = real_writer(handle)

        class Failing:
            def writerow(self, row):
                writer.writerow(row)
                raise OSError(errno.ENOSPC, "No space left on device")

        return Failing()

    monkeypatch.setattr(quantify.csv, "writer", full_disk)
    with pytest.raises(OSError) as failed:
        write_summary_csv(table, summarize_fluid(box_phantom(), (None, 0.004, 0.01)))
    assert failed.value.filename == str(table)  # the user's file is named, not the temporary one
    assert table.read_text() == "previous table\n" and [p.name for p in tmp_path.iterdir()] == ["f.csv"]
