"""Fluid area and volume from labels: phantoms with a known answer, and no figure from an unknown spacing."""

import numpy as np
import pytest

from napari_octfluid.quantify import (
    SpacingError,
    SpacingUnknownError,
    check_spacing,
    fluid_pixels_per_bscan,
    fluid_volume_mm3,
    summarize_fluid,
    write_summary_csv,
)


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


def test_single_bscan_and_wrong_dimensions():
    assert fluid_pixels_per_bscan(np.ones((3, 4), np.uint8)).tolist() == [12]
    with pytest.raises(ValueError, match="2D.*3D"):
        fluid_pixels_per_bscan(np.ones((2, 2, 3, 4), np.uint8))


def test_csv_has_a_row_per_bscan_and_totals(tmp_path):
    path = write_summary_csv(tmp_path / "f.csv", summarize_fluid(box_phantom(), (None, 0.004, 0.01)))
    rows = path.read_text().splitlines()
    assert rows[0] == "bscan,fluid_pixels,fluid_area_mm2"
    assert rows[2] == "1,800,0.032"
    assert rows[7] == "total,2400,0.096"
    assert "fluid volume,,mm3" in rows and "fluid volume,,nL" in rows  # unknown B-scan distance: left empty


def test_csv_reports_each_class_and_the_etdrs_sectors(tmp_path):
    labels = box_phantom()
    labels[2, 10:20, 20:60] = 2  # half of B-scan 2's box becomes class 2
    summary = summarize_fluid(labels, (0.1, 0.004, 0.01))
    assert summary.pixels_per_class[2].tolist() == [0, 0, 400, 0, 0, 0]
    rows = write_summary_csv(tmp_path / "f.csv", summary, {"central": 0.25, "outside grid": 0.5}).read_text()
    lines = rows.splitlines()
    assert (
        lines[0] == "bscan,fluid_pixels,fluid_area_mm2,class_1_pixels,class_2_pixels,class_1_area_mm2,class_2_area_mm2"
    )
    assert lines[3] == "2,800,0.032,400,400,0.016,0.016"
    assert "class 2 volume,0.0016,mm3" in lines and "fluid volume,9.6,nL" in lines
    assert "ETDRS central,0.25,mm3" in lines


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
    [(0.12, 0.0039, 0.0118), (None, 0.0039, 0.0118), (None, None, None), (10.0, 1.0, 1.0), (0.0005, 1e-4, 1e-4)],
)
def test_plausible_spacings_pass_the_check(spacing):
    assert check_spacing(spacing) == spacing


@pytest.mark.parametrize(
    "spacing, phrase",
    [
        ((-0.12, 0.0039, 0.0118), "between B-scans must be a number of millimetres above zero"),
        ((0.12, 0.0, 0.0118), "along depth must be a number of millimetres above zero"),
        ((0.12, float("nan"), 0.0118), "above zero, not nan"),
        ((0.12, 0.0039, float("inf")), "along width must be"),
        ((0.12, 3.9, 0.0118), "larger than any OCT's (at most 1 mm): 3.9 um would be 0.0039 mm"),  # um as mm
        ((120.0, 0.0039, 0.0118), "120 mm between B-scans is larger than any OCT's (at most 10 mm)"),
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
