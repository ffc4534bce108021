"""Quantify: ETDRS sectors, the en-face map linked to the B-scan on screen, CSV and TIFF export, and the spacing
typed in micrometres, checked, applied to the layers and kept."""

import csv

import numpy as np
import pytest

from napari_octfluid._qt.review_tracking import as_volume
from napari_octfluid._sample_data import SAMPLE_MASK, SAMPLE_SCAN
from napari_octfluid.etdrs import OUTSIDE, SECTORS, find_fovea
from napari_octfluid.io import read_volume, write_tiff

SPACING = (0.12, 0.0039, 0.0118)


def quantified(widget, qtbot):
    """Press Quantify and wait for the worker: the figures it shows, or None if it was refused."""
    if not widget.compute():
        return None
    assert widget.jobs.busy  # the click returned before the figures were computed
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=30000)
    return widget.summary


def opened_in_quantify(make_napari_viewer, folder, *written):
    """The sample scan and its mask written to ``folder`` as TIFFs (``written``: write_tiff's spacing and metadata),
    opened through octfluid's reader, with the Quantify tab on them: (viewer, widget, folder)."""
    scan = write_tiff(folder / "scan.tif", read_volume(SAMPLE_SCAN).data, *written, kind="image")
    mask = write_tiff(folder / "mask.tif", read_volume(SAMPLE_MASK).data, *written)
    viewer = make_napari_viewer()
    viewer.open(scan, plugin="octfluid")
    viewer.open(mask, plugin="octfluid")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    widget = panel.tool("Quantify")
    widget.labels_layer.value = viewer.layers["mask"]
    widget.scan.value = viewer.layers["scan"]
    return viewer, widget, folder


@pytest.fixture
def quantify(make_napari_viewer, tmp_path):
    return opened_in_quantify(make_napari_viewer, tmp_path, SPACING, {"laterality": "OS"})


def test_etdrs_table_and_totals(quantify, qtbot):
    viewer, widget, _ = quantify
    assert widget.laterality.value == "OS"
    assert [box.value for box in widget.spacing_um] == pytest.approx([120.0, 3.9, 11.8])
    summary = quantified(widget, qtbot)
    table = widget.sectors.data.to_list()
    assert [row[0] for row in table] == [*SECTORS, OUTSIDE]
    total_nl = sum(float(row[1]) for row in table)
    assert total_nl == pytest.approx(summary.volume_nl, rel=2e-3)  # each shown with 4 significant digits
    assert float(table[0][1]) > 0  # the Duke B-scans cross the centre of the macula
    # the sample's 11 B-scans span 1.3 mm of the 6 mm grid: the centre is scanned whole, the superior and inferior
    # sectors in part or not at all
    scanned = {row[0]: row[2] for row in table}
    assert scanned["central"] == "100 %" and not scanned[OUTSIDE]
    assert all(0 < int(scanned[name].split()[0]) < 100 for name in ("inner superior", "inner inferior"))
    assert scanned["outer superior"] == scanned["outer inferior"] == "0 %"


def test_fovea_detection_and_cursor(quantify, qtbot):
    viewer, widget, _ = quantify
    assert widget.detect_fovea()  # in the worker
    assert not widget.detect_button.enabled and widget.fovea_note.value == "Looking for the fovea..."
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=30000)
    fovea = find_fovea(as_volume(widget.scan.value.data), widget.spacing_mm())  # what the command line finds
    assert (widget.fovea_bscan.value, widget.fovea_column.value) == (fovea.bscan, fovea.column)
    assert fovea.how in widget.fovea_note.value and widget.detect_button.enabled
    viewer.dims.set_current_step(0, 3)
    viewer.cursor.position = (3 * 120.0, 200 * 3.9, 250 * 11.8)
    widget.fovea_at_cursor()
    assert (widget.fovea_bscan.value, widget.fovea_column.value) == (3.0, pytest.approx(250.0))


def show_quantify(viewer, widget) -> None:
    """napari's window on screen with the Quantify tab in front (the map is drawn only while it is visible)."""
    viewer.window._qt_window.show()
    panel = widget.native.parent()
    while not hasattr(panel, "tool"):
        panel = panel.parent()
    panel.setCurrentIndex([panel.tabText(i) for i in range(panel.count())].index("Quantify"))


def test_enface_map_follows_and_moves_the_bscan(quantify, qtbot):
    viewer, widget, _ = quantify
    show_quantify(viewer, widget)
    widget.enface.fold()
    quantified(widget, qtbot)  # computed while folded: drawn when unfolded
    assert widget.enface.view is None
    widget.enface.unfold()
    qtbot.waitUntil(lambda: widget.enface.view.renders == 1, timeout=10000)
    image = widget.enface.view.axis.images[0].get_array()
    expected = (read_volume(SAMPLE_MASK).data > 0).sum(axis=1) * 3.9  # fluid thickness in um per A-scan
    np.testing.assert_allclose(image, expected, rtol=1e-5)
    viewer.dims.set_current_step(0, 7)
    assert widget.enface.view._line.get_ydata()[0] == pytest.approx(7 * 0.12)
    widget._go_to_bscan(2)
    assert viewer.dims.current_step[0] == 2


def test_the_map_is_drawn_once_for_several_quantifies_and_not_while_hidden(quantify, qtbot):
    """Issue 20: a matplotlib redraw of the map cost ~144 ms of napari's event loop; maps given in a row are drawn
    once (a single-shot timer coalesces them), and a map given while the tab is hidden waits until it is shown."""
    viewer, widget, _ = quantify
    show_quantify(viewer, widget)
    widget.enface.unfold()
    view = widget.enface.view
    thickness = np.ones((11, 768))
    for value in (1.0, 2.0, 3.0):
        widget.enface.show_map(thickness * value, "um", SPACING, None)
    qtbot.waitUntil(lambda: view.renders == 1, timeout=10000)
    qtbot.wait(50)
    assert view.renders == 1 and view.axis.images[0].get_array().max() == 3.0  # the last one, drawn once
    viewer.window._qt_window.hide()
    widget.enface.show_map(thickness * 4, "um", SPACING, None)
    qtbot.wait(50)
    assert view.renders == 1 and view.has_pending_map  # hidden: not drawn
    viewer.window._qt_window.show()
    qtbot.waitUntil(lambda: view.renders == 2, timeout=10000)
    assert view.axis.images[0].get_array().max() == 4.0 and not view.has_pending_map


def test_csv_and_tiff_export(quantify, qtbot):
    viewer, widget, tmp_path = quantify
    widget.csv_path.value = tmp_path / "fluid.csv"
    widget.save_csv()  # not quantified yet: computed in the worker, then saved
    qtbot.waitUntil(lambda: (tmp_path / "fluid.csv").is_file(), timeout=30000)
    lines = (tmp_path / "fluid.csv").read_text().splitlines()
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert rows[0] == ["quantity", "bscan", "value", "unit"]
    assert sum(1 for row in rows if row and row[0].startswith("ETDRS ") and row[3] == "nL") == 10
    scanned = {row[0]: float(row[2]) for row in rows if row and row[0].endswith(" scanned")}
    assert (
        len(scanned) == 9 and scanned["ETDRS central scanned"] == 100 and scanned["ETDRS outer superior scanned"] < 50
    )
    assert f"# labels: {tmp_path / 'mask.tif'}" in lines and f"# scan: {tmp_path / 'scan.tif'}" in lines
    assert "# spacing (B-scan, depth, width): 120, 3.9, 11.8 um" in lines and "# eye: OS" in lines
    assert "# spacing source: octfluid" in lines  # the file's own (an octfluid TIFF)
    assert "# fovea: B-scan 5.0, A-scan 383.5 (scan centre)" in lines
    widget.tiff_path.value = tmp_path / "corrected.tif"
    widget.save_tiff()
    saved = read_volume(tmp_path / "corrected.tif")
    assert saved.is_labels and saved.spacing_mm == pytest.approx(SPACING) and saved.meta["laterality"] == "OS"
    np.testing.assert_array_equal(saved.data, viewer.layers["mask"].data)


def test_unknown_spacing_gives_no_sectors(quantify, qtbot):
    viewer, widget, _ = quantify
    widget.spacing_um[0].value = 0.0
    quantified(widget, qtbot)
    assert "spacing" in widget.sectors.data.to_list()[0][0]


def test_an_implausible_spacing_is_refused_before_any_volume_is_shown(quantify, qtbot):
    """The command line's spacing rule (napari_octfluid.spacing): 0.0039 um along depth is millimetres typed where
    micrometres belong; no volume is computed from it, it is not applied, and the panel says what to type."""
    viewer, widget, _ = quantify
    widget.spacing_um[1].value = 0.0039
    assert quantified(widget, qtbot) is None and not widget.jobs.busy
    expected = "0.0039 um is not an OCT pixel size along depth; did you mean 3.9 um (0.0039 mm)?"
    assert expected in widget.summary_label.value and expected in widget.spacing_note.value
    assert viewer.layers["mask"].scale[1] == pytest.approx(3.9)  # the layers keep their spacing
    widget.spacing_um[1].value = 3.9
    assert quantified(widget, qtbot).volume_nl > 0


@pytest.fixture
def unknown_spacing(make_napari_viewer, tmp_path):
    """A scan and its mask whose files hold no spacing (the Duke sample's case)."""
    return opened_in_quantify(make_napari_viewer, tmp_path)


def test_a_typed_spacing_is_applied_to_the_scan_and_its_labels(unknown_spacing):
    """Issue 20: the spacing typed in Quantify was neither applied to the layers nor saved."""
    viewer, widget, tmp_path = unknown_spacing
    assert [box.value for box in widget.spacing_um] == [0.0, 0.0, 0.0]
    for box, um in zip(widget.spacing_um, (120.0, 3.9, 11.8)):
        box.value = um
    for name in ("scan", "mask"):
        layer = viewer.layers[name]
        assert tuple(layer.scale) == pytest.approx((120.0, 3.9, 11.8))
        assert [str(u) for u in layer.units] == ["micrometer"] * 3
        assert layer.metadata["octfluid"]["spacing_mm"] == pytest.approx([0.12, 0.0039, 0.0118])
        assert layer.metadata["octfluid"]["spacing_source"] == "entered by the user"
    assert widget.spacing_note.value == "Spacing: entered by the user."
    # File > Save (octfluid's writer) keeps it: the mask reopens at this scale
    viewer.layers["mask"].save(str(tmp_path / "saved.tif"), plugin="octfluid")
    assert read_volume(tmp_path / "saved.tif").spacing_mm == pytest.approx((0.12, 0.0039, 0.0118))


def test_a_partly_typed_spacing_leaves_the_rest_unknown(unknown_spacing):
    viewer, widget, _ = unknown_spacing
    widget.spacing_um[1].value, widget.spacing_um[2].value = 3.9, 11.8
    layer = viewer.layers["mask"]
    assert tuple(layer.scale) == pytest.approx((1.0, 3.9, 11.8))
    assert [str(u) for u in layer.units] == ["pixel", "micrometer", "micrometer"]
    assert layer.metadata["octfluid"]["spacing_mm"][0] is None


def test_table_numbers_are_readable(quantify, qtbot):
    viewer, widget, _ = quantify
    quantified(widget, qtbot)
    areas = [row[2] for row in widget.table.data.to_list()]
    assert all("e" not in area for area in areas) and "0.02476" in areas  # B-scan 0: 538 px of 3.9 x 11.8 um
    # shown as written, not as magicgui's delegate would reformat it (2.476e-02, 194.6000)
    for table, text in ((widget.table, "0.02476"), (widget.sectors, "194.6")):
        assert table.native.itemDelegate().displayText(text, table.native.locale()) == text


@pytest.mark.parametrize("small, unfolded", [(True, False), (False, True)])
def test_the_map_is_folded_on_a_small_screen_and_built_when_unfolded(qtbot, monkeypatch, small, unfolded):
    import napari_octfluid._qt.enface_section as section

    monkeypatch.setattr(section, "screen_is_small", lambda: small)
    enface = section.EnfaceSection()
    qtbot.addWidget(enface.native)
    assert enface.is_unfolded == unfolded and (enface.view is not None) == unfolded  # matplotlib only when shown
    enface.native.show()
    enface.show_map(np.ones((3, 4)), "um", (None, None, None), None)
    enface.unfold()
    qtbot.waitUntil(lambda: enface.view.renders == 1, timeout=10000)
    assert enface.view.axis.images[0].get_array().shape == (3, 4)


def test_a_typed_spacing_reaches_the_overlays_and_an_unplaced_mask_of_the_scan(unknown_spacing):
    """The probability and difference layers (drawn over the scan) and a grader's mask without a spacing stayed at
    pixel size, no longer lining up with the scan; a mask of that shape is left alone where another scan of the
    same shape is open, since it could be that scan's."""
    from napari_octfluid._qt._layer_pick import from_file_of

    viewer, widget, _ = unknown_spacing
    scan = viewer.layers["scan"]
    shape = scan.data.shape
    viewer.add_image(np.zeros(shape, np.float32), name="scan fluid probability", metadata=from_file_of(scan))
    viewer.add_labels(np.zeros(shape, np.uint8), name="difference", metadata=from_file_of(scan))
    viewer.add_labels(np.zeros(shape, np.uint8), name="grader 2")
    viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="another shape")
    widget.spacing_um[1].value = 3.9
    for name in ("scan fluid probability", "difference", "grader 2"):
        assert tuple(viewer.layers[name].scale) == pytest.approx((1.0, 3.9, 1.0)), name
    assert tuple(viewer.layers["another shape"].scale) == (1.0, 1.0, 1.0)

    viewer.add_image(np.zeros(shape, np.uint8), name="another scan")
    viewer.add_labels(np.zeros(shape, np.uint8), name="grader of which scan")
    widget.spacing_um[2].value = 11.8
    assert tuple(viewer.layers["grader 2"].scale) == pytest.approx((1.0, 3.9, 11.8))  # placed now: the scan's
    assert tuple(viewer.layers["grader of which scan"].scale) == (1.0, 1.0, 1.0)


def test_one_bscan_asks_for_no_bscan_distance(make_napari_viewer, tmp_path, qtbot):
    """A line scan was told to "enter all three spacings", though it has no distance between B-scans to enter."""
    mask = read_volume(SAMPLE_MASK).data[5]
    path = write_tiff(tmp_path / "line.tif", mask, (None, 0.0039, 0.0118))
    viewer = make_napari_viewer()
    viewer.open(path, plugin="octfluid")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    widget = panel.tool("Quantify")
    widget.labels_layer.value = viewer.layers["line"]
    summary = quantified(widget, qtbot)
    assert summary.area_mm2_per_bscan is not None
    assert "One B-scan: an area, no volume or ETDRS grid." in widget.summary_label.value
    assert "all three spacings" not in widget.summary_label.value
