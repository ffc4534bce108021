"""A spacing typed in Quantify is applied to the labels layer's metadata; the autosave keeps it with the corrections
(also when it is the only change), and reopening the scan brings it back (issue 20)."""

import numpy as np
import pytest
from napari.layers import Labels
from sidecar_forgery import SHAPE, scan_pixels

import napari_octfluid._reader as reader
from napari_octfluid._layers import META_KEY, layer_spacing_source, spacing_layer_update
from napari_octfluid._qt.review_tracking import ReviewTracker
from napari_octfluid.io import write_tiff
from napari_octfluid.io.sidecar import read_sidecar, sidecar_path
from napari_octfluid.spacing import ENTERED_BY_USER

TYPED_MM = (0.12, 0.0039, 0.0118)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    for kind in ("warning", "info", "error"):
        monkeypatch.setattr(reader, f"show_{kind}", lambda *_: None)
    monkeypatch.setattr(reader, "prefer_octfluid_reader", lambda: [])


def test_a_typed_spacing_is_autosaved_and_restored(tmp_path, qtbot):
    scan = write_tiff(tmp_path / "scan.tif", scan_pixels(0), kind="image")  # the file knows no spacing
    [(_, kwargs, _)] = reader.read_scan_layers(str(scan))
    layer = Labels(np.zeros(SHAPE, np.uint8), metadata={META_KEY: dict(kwargs["metadata"][META_KEY])})
    tracker = ReviewTracker(layer, interval_ms=60_000)
    try:
        layer.paint((1, 5, 5), 1)
        qtbot.wait(20)
        assert tracker.save_now()
        assert read_sidecar(sidecar_path(scan)).spacing is None  # nothing typed yet
        typed = spacing_layer_update(3, layer.metadata, TYPED_MM, ENTERED_BY_USER)
        layer.metadata = typed["metadata"]
        assert tracker.save_now(), "a spacing typed after the last save is a change worth saving"
        assert not tracker.save_now(), "nothing changed since"
    finally:
        tracker.close()
    saved = read_sidecar(sidecar_path(scan)).spacing
    assert saved.spacing_mm == pytest.approx(TYPED_MM) and saved.source == ENTERED_BY_USER
    image, corrections = reader.read_scan_layers(str(scan))
    for _, reopened, _ in (image, corrections):
        assert reopened["scale"] == pytest.approx((120.0, 3.9, 11.8))
        assert layer_spacing_source(reopened["metadata"]).startswith(ENTERED_BY_USER)
    assert corrections[0][1, 5, 5] == 1
