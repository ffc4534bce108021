"""The napari reader with a hostile or foreign autosave sidecar beside the scan: the scan always opens, a notice
names the sidecar and says why its corrections were not restored, and the sidecar is never changed; the first
autosave afterwards keeps it aside before writing a sidecar bound to this scan."""

import os
import shutil
import sys
import threading

import numpy as np
import pytest
from napari.layers import Labels
from sidecar_forgery import HOSTILE_MEMBERS, SHAPE, npy_bytes, replace_members, scan_pixels, write_sidecar_for

import napari_octfluid._reader as reader
from napari_octfluid._layers import META_KEY, REVIEW_KEY
from napari_octfluid._qt.review_tracking import ReviewTracker
from napari_octfluid.io import read_volume, write_tiff
from napari_octfluid.io.scan_identity import SCAN_IDENTITY_KEY, ScanIdentity
from napari_octfluid.io.sidecar import RESTORED_SIDECAR_KEY, file_fingerprint, read_sidecar, sidecar_path


@pytest.fixture
def notices(monkeypatch):
    shown = {"warning": [], "info": [], "error": []}
    for kind in shown:
        monkeypatch.setattr(reader, f"show_{kind}", shown[kind].append)
    return shown


@pytest.fixture
def scan(tmp_path):
    return write_tiff(tmp_path / "scan.tif", scan_pixels(0), kind="image")


@pytest.fixture
def other_scan(tmp_path):
    """Another scan of the same shape, with corrections of its own."""
    other = write_tiff(tmp_path / "other.tif", scan_pixels(1), kind="image")
    write_sidecar_for(sidecar_path(other), read_volume(other).data, scan_name="other.tif")
    return other


def opened_without_corrections(scan, notices, phrase: str) -> None:
    """The scan opened alone, and one warning named the sidecar and said ``phrase``."""
    layers = reader.read_scan_layers(str(scan))
    assert [kind for _, _, kind in layers] == ["image"]
    np.testing.assert_array_equal(layers[0][0], read_volume(scan).data)
    [warning] = notices["warning"]
    assert sidecar_path(scan).name in warning and phrase in warning and "without the corrections" in warning
    assert notices["error"] == [] and notices["info"] == []


@pytest.mark.parametrize(
    "case",
    [
        "baseline_of_another_shape",
        "non_scalar_version",
        "labels_declaring_100_GB",
        "float_labels",
        "pickled_labels",
        "version_from_the_future",
    ],
)
def test_a_malformed_sidecar_leaves_the_scan_opening_with_a_notice(scan, notices, case):
    replacements, phrase = HOSTILE_MEMBERS[case]
    path = replace_members(write_sidecar_for(sidecar_path(scan), read_volume(scan).data), **replacements(SHAPE))
    before = file_fingerprint(path)
    opened_without_corrections(scan, notices, phrase)
    assert file_fingerprint(path) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_sidecar_does_not_hang_the_reader(scan, notices):
    os.mkfifo(sidecar_path(scan))
    outcome = []
    opening = threading.Thread(target=lambda: outcome.append(reader.read_scan_layers(str(scan))), daemon=True)
    opening.start()
    opening.join(timeout=1.0)
    if opening.is_alive():  # unblock it so that the test run can end, then fail
        os.close(os.open(sidecar_path(scan), os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the reader blocked on a named pipe sidecar")
    [layers] = outcome
    assert [kind for _, _, kind in layers] == ["image"]
    [warning] = notices["warning"]
    assert sidecar_path(scan).name in warning and "not a regular file" in warning


def test_a_sidecar_copied_from_another_scan_is_refused_and_named(scan, other_scan, notices):
    shutil.copyfile(sidecar_path(other_scan), sidecar_path(scan))
    opened_without_corrections(scan, notices, "saved for 'other.tif'")


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_a_sidecar_linked_from_another_scan_is_refused(scan, other_scan, notices):
    sidecar_path(scan).symlink_to(sidecar_path(other_scan))
    opened_without_corrections(scan, notices, "symbolic link")


def test_the_sidecar_of_this_scan_is_still_restored(scan, notices):
    path = write_sidecar_for(sidecar_path(scan), read_volume(scan).data)
    image, labels = reader.read_scan_layers(str(scan))
    assert labels[2] == "labels" and labels[0][0, 3, 4] == 1
    identity = ScanIdentity.of(read_volume(scan).data)
    for _, kwargs, _ in (image, labels):  # the autosave binds to it without reading the scan again
        assert ScanIdentity.from_metadata(kwargs["metadata"][META_KEY][SCAN_IDENTITY_KEY]) == identity
    assert labels[1]["metadata"][META_KEY][RESTORED_SIDECAR_KEY] == file_fingerprint(path)
    assert labels[1]["metadata"][REVIEW_KEY].status(0).label == "corrected"
    assert notices["warning"] == [] and "restored your corrections" in notices["info"][0]


def test_a_sidecar_of_the_older_format_is_restored_with_a_notice(scan, notices):
    replace_members(
        write_sidecar_for(sidecar_path(scan), read_volume(scan).data, bound=False),
        format_version=npy_bytes(np.array(1)),
    )
    _, labels = reader.read_scan_layers(str(scan))
    assert labels[0][0, 3, 4] == 1
    [warning] = notices["warning"]
    assert "older octfluid" in warning and "not bound" in warning


def labels_layer_from(layer_tuple) -> Labels:
    data, kwargs, _ = layer_tuple
    return Labels(data, metadata=kwargs["metadata"])


def labels_predicted_from(image_tuple) -> Labels:
    """Empty labels as a prediction leaves them: carrying the scan's metadata, its identity among it."""
    return Labels(np.zeros(SHAPE, np.uint8), metadata={META_KEY: dict(image_tuple[1]["metadata"][META_KEY])})


def autosave_once(layer: Labels, qtbot, paint: tuple[tuple[int, int, int], int] | None = None) -> ReviewTracker:
    """Track ``layer``, paint ``(point, label)`` into it when given, autosave once and stop tracking."""
    tracker = ReviewTracker(layer, interval_ms=60_000)
    try:
        if paint is not None:
            layer.paint(*paint)
            qtbot.wait(20)
        assert tracker.save_now()
    finally:
        tracker.close()
    return tracker


def test_the_first_autosave_keeps_a_refused_sidecar_aside_and_binds_the_new_one(scan, notices, qtbot, monkeypatch):
    path = sidecar_path(scan)
    path.write_bytes(b"PK\x03\x04 corrections octfluid cannot read")
    [image] = reader.read_scan_layers(str(scan))
    layer = labels_predicted_from(image)
    # the identity the labels carry is not computed again while editing
    monkeypatch.setattr(ScanIdentity, "of", lambda *a, **k: pytest.fail("the scan was hashed again"))
    warnings = []
    monkeypatch.setattr("napari_octfluid._qt.review_tracking.show_warning", warnings.append)
    autosave_once(layer, qtbot, paint=((1, 5, 5), 2))
    [kept] = [p for p in scan.parent.iterdir() if ".unreadable-" in p.name]
    assert kept.read_bytes() == b"PK\x03\x04 corrections octfluid cannot read"
    assert len(warnings) == 1 and kept.name in warnings[0]
    monkeypatch.undo()
    restored = read_sidecar(path, scan=ScanIdentity.of(read_volume(scan).data))
    assert restored.notice is None and restored.state.status(1).label == "corrected"


def test_a_restored_sidecar_is_replaced_by_its_autosave_without_keeping_a_copy(scan, notices, qtbot):
    write_sidecar_for(sidecar_path(scan), read_volume(scan).data)
    _, restored = reader.read_scan_layers(str(scan))
    tracker = autosave_once(labels_layer_from(restored), qtbot, paint=((2, 5, 5), 3))
    assert sorted(p.name for p in scan.parent.iterdir()) == ["scan.tif", "scan.tif.octfluid.npz"]
    assert tracker.kept_aside is None
    saved = read_sidecar(sidecar_path(scan), scan=ScanIdentity.of(read_volume(scan).data))
    assert saved.labels[2, 5, 5] == 3 and saved.labels[0, 3, 4] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_an_autosave_never_writes_through_a_link_into_another_scans_sidecar(scan, other_scan, notices, qtbot):
    other_sidecar = sidecar_path(other_scan)
    before = other_sidecar.read_bytes()
    sidecar_path(scan).symlink_to(other_sidecar)
    [image] = reader.read_scan_layers(str(scan))
    tracker = autosave_once(labels_predicted_from(image), qtbot)
    assert other_sidecar.read_bytes() == before and tracker.kept_aside.is_symlink()
    assert not sidecar_path(scan).is_symlink()


def test_a_scan_opened_twice_autosaves_from_one_layer_and_loses_neither_copys_corrections(
    scan, notices, qtbot, monkeypatch
):
    """Two layers of one scan used to write its one sidecar in turn, the last write erasing the other's corrections:
    the first tracked owns it, the other says so once and takes over (keeping the owner's file aside) when the
    owner's layer goes."""
    from napari_octfluid._qt import review_tracking

    write_sidecar_for(sidecar_path(scan), read_volume(scan).data)
    warnings = []
    monkeypatch.setattr(review_tracking, "show_warning", warnings.append)
    first, second = (labels_layer_from(reader.read_scan_layers(str(scan))[1]) for _ in range(2))
    owner, other = (review_tracking.tracker_for(layer) for layer in (first, second))
    try:
        first.paint((1, 5, 5), 2)
        second.paint((2, 6, 6), 3)
        qtbot.wait(20)
        assert owner.sidecar_owner() is owner and other.sidecar_owner() is owner
        other.tick()
        other.tick()
        assert not other.save_now() and owner.save_now()
        [warning] = warnings
        assert repr(second.name) in warning and "not autosaved" in warning
        identity = ScanIdentity.of(read_volume(scan).data)
        saved = read_sidecar(sidecar_path(scan), scan=identity)
        assert saved.labels[1, 5, 5] == 2 and saved.labels[2, 6, 6] != 3
        owner.close()
        assert other.sidecar_owner() is other and other.save_now()
        [kept] = [p for p in scan.parent.iterdir() if ".previous-" in p.name]
        assert read_sidecar(kept, scan=identity).labels[1, 5, 5] == 2  # the first copy's work, kept aside
        assert read_sidecar(sidecar_path(scan), scan=identity).labels[2, 6, 6] == 3
    finally:
        for tracker in (owner, other):
            tracker.close()
