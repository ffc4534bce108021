"""The reader (issue 20): the spacing kept with the corrections comes back on every layer of the scan, masks read
from files are drawn in the reference colour and the user's corrections in the model's, and a scan with no sidecar
opens without hashing its pixels (the autosave does it, in its thread, before its first write)."""

import numpy as np
import pytest
from napari.layers import Labels
from sidecar_forgery import SHAPE, corrections_for, scan_pixels

import napari_octfluid._reader as reader
from napari_octfluid._layers import META_KEY, layer_spacing_source, saved_spacing
from napari_octfluid._qt.review_tracking import ReviewTracker
from napari_octfluid.colours import MODEL, REFERENCE, label_colours
from napari_octfluid.io import read_volume, write_tiff
from napari_octfluid.io.scan_identity import DEFERRED_KEY, SCAN_IDENTITY_KEY, ScanIdentity
from napari_octfluid.io.sidecar import SavedSpacing, read_sidecar, save_sidecar, sidecar_path
from napari_octfluid.spacing import ENTERED_BY_USER

ENTERED = SavedSpacing((0.12, 0.0039, 0.0118), ENTERED_BY_USER)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """The reader's notices, collected; the reader preference left alone (tests/_qt/test_reader_preference.py)."""
    shown = {"warning": [], "info": [], "error": []}
    for kind in shown:
        monkeypatch.setattr(reader, f"show_{kind}", shown[kind].append)
    monkeypatch.setattr(reader, "prefer_octfluid_reader", lambda: [])
    return shown


def scan_with_sidecar(tmp_path, file_spacing=(None, None, None), spacing=ENTERED):
    scan = write_tiff(tmp_path / "scan.tif", scan_pixels(0), file_spacing, kind="image")
    labels, state = corrections_for(read_volume(scan).data)
    save_sidecar(sidecar_path(scan), labels, state, ScanIdentity.of(read_volume(scan).data), spacing)
    return scan


def test_a_spacing_the_user_entered_comes_back_on_the_scan_and_its_corrections(tmp_path):
    image, corrections = reader.read_scan_layers(str(scan_with_sidecar(tmp_path)))
    for _, kwargs, _ in (image, corrections):
        assert kwargs["scale"] == pytest.approx((120.0, 3.9, 11.8))
        assert kwargs["units"] == ("micrometer",) * 3
        assert kwargs["metadata"][META_KEY]["spacing_mm"] == pytest.approx([0.12, 0.0039, 0.0118])
        source = layer_spacing_source(kwargs["metadata"])
        assert source == "entered by the user, restored from scan.tif.octfluid.npz"


def test_the_files_own_spacing_wins_over_one_the_autosave_copied_from_it(tmp_path):
    copied = SavedSpacing((0.2, 0.005, 0.01), "ImageJ TIFF")  # not the user's: never overrides the file
    scan = scan_with_sidecar(tmp_path, file_spacing=(0.12, 0.0039, 0.0118), spacing=copied)
    image, corrections = reader.read_scan_layers(str(scan))
    for _, kwargs, _ in (image, corrections):
        assert kwargs["metadata"][META_KEY]["spacing_mm"] == pytest.approx([0.12, 0.0039, 0.0118])


def test_a_spacing_the_user_entered_replaces_the_files_with_a_notice(tmp_path, quiet):
    scan = scan_with_sidecar(tmp_path, file_spacing=(0.2, 0.005, 0.01))
    image, _ = reader.read_scan_layers(str(scan))
    assert image[1]["scale"] == pytest.approx((120.0, 3.9, 11.8))
    [warning] = quiet["warning"]
    assert "120, 3.9, 11.8 um" in warning and "200, 5, 10 um" in warning


def test_masks_from_files_are_references_and_corrections_are_the_models(tmp_path):
    mask = write_tiff(tmp_path / "mask.tif", (scan_pixels(0) > 128).astype(np.uint8), kind="labels")
    [(_, mask_kwargs, kind)] = reader.read_scan_layers(str(mask))
    assert kind == "labels" and mask_kwargs["colormap"] == label_colours(REFERENCE)
    _, (_, corrections_kwargs, _) = reader.read_scan_layers(str(scan_with_sidecar(tmp_path)))
    assert corrections_kwargs["colormap"] == label_colours(MODEL)
    # napari 0.9 takes the dict as a direct colour map
    layer = Labels(np.zeros(SHAPE, np.uint8), colormap=mask_kwargs["colormap"])
    assert np.allclose(layer.colormap.map(1)[..., :3], [0xF0 / 255, 0xE4 / 255, 0x42 / 255], atol=1 / 255)


def test_a_scan_without_a_sidecar_opens_without_hashing(tmp_path, monkeypatch):
    scan = write_tiff(tmp_path / "scan.tif", scan_pixels(0), kind="image")
    monkeypatch.setattr(ScanIdentity, "of", classmethod(lambda *a, **k: pytest.fail("hashed while opening")))
    [(pixels, kwargs, _)] = reader.read_scan_layers(str(scan))
    deferred = kwargs["metadata"][META_KEY][SCAN_IDENTITY_KEY]
    assert deferred["shape"] == list(SHAPE) and "blake2b" not in deferred and DEFERRED_KEY in deferred
    monkeypatch.undo()
    # the first to ask (the autosave, in its thread) gets the identity computed from the scan's pixels
    assert ScanIdentity.from_metadata(deferred) == ScanIdentity.of(read_volume(scan).data)


def test_the_autosave_binds_a_deferred_identity(tmp_path, qtbot):
    """The guarantee is unchanged: the sidecar the first autosave writes is bound to this scan."""
    scan = write_tiff(tmp_path / "scan.tif", scan_pixels(0), kind="image")
    [(pixels, kwargs, _)] = reader.read_scan_layers(str(scan))
    layer = Labels(np.zeros(SHAPE, np.uint8), metadata={META_KEY: dict(kwargs["metadata"][META_KEY])})
    tracker = ReviewTracker(layer, interval_ms=60_000)
    try:
        layer.paint((1, 5, 5), 1)
        qtbot.wait(20)
        assert tracker.save_now()
    finally:
        tracker.close()
    restored = read_sidecar(sidecar_path(scan), scan=ScanIdentity.of(read_volume(scan).data))
    assert restored.notice is None and restored.labels[1, 5, 5] == 1
    assert pixels is not None  # the scan's pixels stay alive as long as its layer does


def test_a_layers_spacing_as_the_autosave_keeps_it():
    assert saved_spacing({META_KEY: {"spacing_mm": [None, None, None]}}) is None
    metadata = {META_KEY: {"spacing_mm": [0.12, 0.0039, 0.0118], "spacing_source": ENTERED_BY_USER}}
    assert saved_spacing(metadata) == ENTERED
