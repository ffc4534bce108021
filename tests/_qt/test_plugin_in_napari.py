"""octfluid inside napari: manifest, reader, writer, sample data and the four dock widgets (drawn under Xvfb)."""

import numpy as np
import pytest
from npe2 import PluginManifest

from napari_octfluid._sample_data import SAMPLE_SCAN
from napari_octfluid.io import SUPPORTED_SUFFIXES, write_tiff

WIDGETS = ("Predict", "Review", "Fine-tune", "Quantify")


def test_manifest_is_valid_and_reads_every_supported_suffix():
    manifest = PluginManifest.from_distribution("octfluid")
    assert manifest.name == "octfluid"
    patterns = set(manifest.contributions.readers[0].filename_patterns)
    assert {f"*{suffix}" for suffix in SUPPORTED_SUFFIXES} <= patterns
    assert [w.display_name for w in manifest.contributions.widgets] == ["octfluid", *WIDGETS, "Loss explorer"]


def test_scan_opens_with_our_reader_and_its_physical_scale(make_napari_viewer, tmp_path):
    path = write_tiff(
        tmp_path / "scan.tif",
        np.full((3, 40, 60), 90, np.uint8),
        (0.12, 0.0039, 0.0118),
        {"laterality": "OS"},
        kind="image",
    )
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="octfluid")
    assert layer._type_string == "image"
    assert tuple(layer.scale) == pytest.approx((120.0, 3.9, 11.8))
    assert [str(u) for u in layer.units] == ["micrometer"] * 3
    assert tuple(layer.axis_labels) == ("B-scan", "depth", "width")
    meta = layer.metadata["octfluid"]
    assert meta["laterality"] == "OS" and meta["spacing_mm"] == [0.12, 0.0039, 0.0118]
    assert meta["source"] == str(path.resolve())


def test_sample_file_opens_through_the_plugin(make_napari_viewer):
    viewer = make_napari_viewer()
    [layer] = viewer.open(SAMPLE_SCAN, plugin="octfluid")
    assert layer.data.shape == (11, 496, 768)
    assert [str(u) for u in layer.units] == ["pixel"] * 3  # the Duke export holds no spacing


def test_open_sample_gives_the_scan_and_the_expert_mask(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    image, labels = viewer.layers
    assert image._type_string == "image" and labels._type_string == "labels"
    assert labels.data.shape == image.data.shape == (11, 496, 768)
    assert set(np.unique(labels.data)) == {0, 1}


def test_bad_file_becomes_a_notification_not_a_crash(make_napari_viewer, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("napari_octfluid._reader.show_error", shown.append)
    bad = tmp_path / "cut.tif"
    bad.write_bytes(SAMPLE_SCAN.read_bytes()[:5000])
    viewer = make_napari_viewer()
    viewer.open(bad, plugin="octfluid")
    assert len(viewer.layers) == 0
    assert len(shown) == 1 and "cut.tif" in shown[0] and "truncated" in shown[0]


def test_labels_writer_keeps_spacing(make_napari_viewer, tmp_path):
    from napari_octfluid.io import read_volume

    source = write_tiff(
        tmp_path / "mask.tif", (np.arange(3 * 20 * 30).reshape(3, 20, 30) % 3).astype(np.uint8), (None, 0.0039, 0.0118)
    )
    viewer = make_napari_viewer()
    [layer] = viewer.open(source, plugin="octfluid")
    assert layer._type_string == "labels"
    layer.data[0, :5, :5] = 1  # a correction
    saved = tmp_path / "corrected.tif"
    viewer.layers.save(str(saved), selected=False, plugin="octfluid")
    reread = read_volume(saved)
    np.testing.assert_array_equal(reread.data, layer.data)
    assert reread.spacing_mm == (None, 0.0039, 0.0118)
    assert reread.is_labels


def test_all_widgets_dock_and_work_on_the_sample(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    widgets = {name: viewer.window.add_plugin_dock_widget("octfluid", name)[1] for name in WIDGETS}
    expected = np.count_nonzero(viewer.layers[1].data.reshape(11, -1), axis=1)

    review = widgets["Review"]
    assert [[row[0], row[1], row[2]] for row in review.table.data.to_list()[:3]] == [
        [i, "unreviewed", int(expected[i])] for i in range(3)
    ]
    viewer.dims.set_current_step(0, 8)
    target = review.go_to_next_with_fluid()
    assert target == next(i for i in [9, 10, 0, 1, 2] if expected[i] > 0)
    assert viewer.dims.current_step[0] == target

    quantify = widgets["Quantify"]
    assert [box.value for box in quantify.spacing_um] == [0.0, 0.0, 0.0]  # unknown: the user must enter it

    def quantified():
        assert quantify.compute()  # computed in the worker: the click returns at once
        qtbot.waitUntil(lambda: not quantify.jobs.busy, timeout=30000)
        return quantify.summary

    assert quantified().volume_mm3 is None
    assert "Enter all three spacings" in quantify.summary_label.value
    for box, value in zip(quantify.spacing_um, (120.0, 3.9, 11.8)):
        box.value = value
    summary = quantified()
    assert summary.volume_mm3 == pytest.approx(expected.sum() * 0.12 * 0.0039 * 0.0118)

    finetune = widgets["Fine-tune"]
    assert finetune.summary.value.startswith(f"{int((expected > 0).sum())} B-scans to train on")

    predict = widgets["Predict"]
    assert predict.scan.value is viewer.layers[0]


def test_plugin_without_widget_name_docks_every_tool_as_tabs(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid")  # what `napari -w octfluid` does
    assert [panel.tabText(i) for i in range(panel.count())] == list(WIDGETS)
    quantify = panel.tool("Quantify")  # built on first use, with the layers already open
    assert quantify.labels_layer.value is viewer.layers[1]
    assert "Fine-tune" not in panel.tools  # never shown, never asked for: not built
    viewer.layers.remove(viewer.layers[1])  # napari asks every built tab to refresh its layer lists
    assert quantify.labels_layer.value is None


def test_tabs_are_built_when_first_shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid")
    qtbot.waitUntil(lambda: "Predict" in panel.tools, timeout=60000)  # the tab on show, once its module is in
    assert list(panel.tools) == ["Predict"]
    qtbot.waitUntil(lambda: len(panel.imported) == len(WIDGETS), timeout=60000)
    panel.setCurrentIndex(list(WIDGETS).index("Fine-tune"))
    finetune = panel.tools["Fine-tune"]
    assert panel.currentWidget().widget() is finetune.native  # in the tab's scroll area
    assert finetune.scan.value is viewer.layers[0]  # its layer lists found the viewer through the dock
    assert panel.tool("Fine-tune") is finetune  # built once


def test_every_tool_names_its_fields(make_napari_viewer):
    # a widget attribute called `labels` once replaced magicgui's Container.labels switch: an empty layer list made
    # it falsy and the Fine-tune, Review and Quantify fields lost their names
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("octfluid")
    for name in WIDGETS:
        assert type(panel.tool(name).labels) is bool, name  # magicgui's switch, not a layer picker (Review has none)
    assert panel.tool("Fine-tune").labels is True
    assert panel.tool("Fine-tune").learning_rate.label == "Learning rate"
    assert panel.tool("Fine-tune").learning_rate._labeled_widget() is not None


def test_docking_the_panel_fits_the_scan_to_the_narrower_canvas(make_napari_viewer, qtbot, monkeypatch):
    """The scan was fitted to the canvas before the dock took its width: its sides stayed cut off until Home."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 496, 1024), np.uint8), name="scan")
    fitted = []
    monkeypatch.setattr(type(viewer), "reset_view", lambda self, *a, **k: fitted.append(self))
    viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    qtbot.waitUntil(lambda: bool(fitted), timeout=5000)
    assert len(fitted) == 1
