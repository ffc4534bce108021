"""Quantify: ETDRS sectors, the en-face map linked to the B-scan on screen, CSV and TIFF export."""

import csv

import numpy as np
import pytest

from napari_octfluid._sample_data import SAMPLE_MASK, SAMPLE_SCAN
from napari_octfluid.etdrs import OUTSIDE, SECTORS
from napari_octfluid.io import read_volume, write_tiff

SPACING = (0.12, 0.0039, 0.0118)


@pytest.fixture
def quantify(make_napari_viewer, tmp_path):
    scan = write_tiff(tmp_path / "scan.tif", read_volume(SAMPLE_SCAN).data, SPACING, {"laterality": "OS"}, kind="image")
    mask = write_tiff(tmp_path / "mask.tif", read_volume(SAMPLE_MASK).data, SPACING, {"laterality": "OS"})
    viewer = make_napari_viewer()
    viewer.open(scan, plugin="octfluid")
    viewer.open(mask, plugin="octfluid")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    widget = panel.tools["Quantify"]
    widget.labels_layer.value = viewer.layers["mask"]
    widget.scan.value = viewer.layers["scan"]
    return viewer, widget, tmp_path


def test_etdrs_table_and_totals(quantify):
    viewer, widget, _ = quantify
    assert widget.laterality.value == "OS"
    assert [box.value for box in widget.spacing_um] == pytest.approx([120.0, 3.9, 11.8])
    summary = widget.compute()
    table = widget.sectors.data.to_list()
    assert [row[0] for row in table] == [*SECTORS, OUTSIDE]
    total_nl = sum(float(row[1]) for row in table)
    assert total_nl == pytest.approx(summary.volume_nl, abs=0.01)
    assert float(table[0][1]) > 0  # the Duke B-scans cross the centre of the macula


def test_fovea_detection_and_cursor(quantify):
    viewer, widget, _ = quantify
    fovea = widget.detect_fovea()
    assert widget.fovea_bscan.value == fovea.bscan and fovea.how in widget.fovea_note.value
    viewer.dims.set_current_step(0, 3)
    viewer.cursor.position = (3 * 120.0, 200 * 3.9, 250 * 11.8)
    widget.fovea_at_cursor()
    assert (widget.fovea_bscan.value, widget.fovea_column.value) == (3.0, pytest.approx(250.0))


def test_enface_map_follows_and_moves_the_bscan(quantify):
    viewer, widget, _ = quantify
    widget.compute()
    image = widget.enface.axis.images[0].get_array()
    expected = (read_volume(SAMPLE_MASK).data > 0).sum(axis=1) * 3.9  # fluid thickness in um per A-scan
    np.testing.assert_allclose(image, expected, rtol=1e-5)
    viewer.dims.set_current_step(0, 7)
    assert widget.enface._line.get_ydata()[0] == pytest.approx(7 * 0.12)
    widget._go_to_bscan(2)
    assert viewer.dims.current_step[0] == 2


def test_csv_and_tiff_export(quantify):
    viewer, widget, tmp_path = quantify
    widget.compute()
    widget.csv_path.value = tmp_path / "fluid.csv"
    widget.save_csv()
    rows = list(csv.reader(open(tmp_path / "fluid.csv")))
    assert rows[0][:3] == ["bscan", "fluid_pixels", "fluid_area_mm2"]
    assert sum(1 for row in rows if row and row[0].startswith("ETDRS ")) == 10
    widget.tiff_path.value = tmp_path / "corrected.tif"
    widget.save_tiff()
    saved = read_volume(tmp_path / "corrected.tif")
    assert saved.is_labels and saved.spacing_mm == pytest.approx(SPACING) and saved.meta["laterality"] == "OS"
    np.testing.assert_array_equal(saved.data, viewer.layers["mask"].data)


def test_unknown_spacing_gives_no_sectors(quantify):
    viewer, widget, _ = quantify
    widget.spacing_um[0].value = 0.0
    widget.compute()
    assert "spacing" in widget.sectors.data.to_list()[0][0]


def test_an_implausible_spacing_is_refused_before_any_volume_is_shown(quantify):
    """The command line's spacing rule (quantify.check_spacing): 3900 um along depth is millimetres typed where
    micrometres belong; no volume is computed from it, and the panel says what is wrong."""
    viewer, widget, _ = quantify
    widget.spacing_um[1].value = 3900.0
    assert widget.compute() is None
    assert "Check the spacing" in widget.summary_label.value and "3.9 mm" in widget.summary_label.value
    widget.spacing_um[1].value = 3.9
    assert widget.compute().volume_nl > 0
