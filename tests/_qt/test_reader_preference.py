"""octfluid becomes napari's preferred reader for its scan formats (issue 20: File > Open preselected "napari
builtins", and the scan opened without its corrections and spacing), through napari's own reader choice
(``QtViewer._qt_open``, which File > Open and drag-and-drop call: ``viewer.open(path, plugin=None)``, and the reader
dialog when that raises), never overriding the user."""

import numpy as np
import pytest
from napari.errors import MultipleReaderError
from napari.plugins import _npe2
from napari.settings import get_settings
from sidecar_forgery import corrections_for, scan_pixels

import napari_octfluid._reader_preference as preference
from napari_octfluid.io import read_volume, write_tiff
from napari_octfluid.io.scan_identity import ScanIdentity
from napari_octfluid.io.sidecar import SavedSpacing, save_sidecar, sidecar_path


@pytest.fixture
def fresh(make_napari_viewer, tmp_path, monkeypatch):
    """A viewer with napari's settings reset, octfluid's memory of what it set in this test's folder, and the
    notices collected."""
    viewer = make_napari_viewer()
    get_settings().plugins.extension2reader = {}
    monkeypatch.setattr(preference, "_memory_path", lambda: tmp_path / preference.MEMORY_NAME)
    monkeypatch.setattr(preference, "_offered_this_session", set())
    notices = []
    monkeypatch.setattr("napari.utils.notifications.show_info", notices.append)
    # the reader dialog File > Open shows when napari cannot choose: it must not come (it would also block)
    monkeypatch.setattr("napari._qt.qt_viewer.handle_gui_reading", lambda *a, **k: pytest.fail("reader dialog"))
    return viewer, notices


@pytest.fixture
def scan(tmp_path):
    """A real TIFF scan whose corrections and spacing the user entered are in a sidecar beside it."""
    scan = write_tiff(tmp_path / "scan.tif", scan_pixels(0), kind="image")
    labels, state = corrections_for(read_volume(scan).data)
    spacing = SavedSpacing((0.12, 0.0039, 0.0118), "entered by the user")
    save_sidecar(sidecar_path(scan), labels, state, ScanIdentity.of(read_volume(scan).data), spacing)
    return scan


def open_as_file_open_does(viewer, path) -> None:
    """File > Open and a drop on the canvas: napari's reader choice, its dialog only when it cannot choose."""
    viewer.window._qt_viewer._qt_open([str(path)], stack=False)


def test_without_the_preference_napari_cannot_choose(fresh, scan):
    viewer, _ = fresh
    assert {"octfluid", "napari"} <= set(_npe2.get_readers(str(scan)))  # both read *.tif
    with pytest.raises(MultipleReaderError):  # File > Open shows the dialog, napari builtins preselected
        viewer.open(scan, plugin=None)


def test_octfluid_becomes_the_reader_and_restores_corrections_and_spacing(fresh, scan):
    viewer, notices = fresh
    set_now = preference.prefer_octfluid_reader()
    assert {"*.tif", "*.tiff", "*.vol", "*.dcm", "*.mat"} <= set(set_now)
    assert not {"*.png", "*.jpg"} & set(set_now)  # every picture on the computer: left to the user
    assert get_settings().plugins.extension2reader["*.tif"] == "octfluid"
    [notice] = notices
    assert "*.tif" in notice and "Preferences > Plugins" in notice
    open_as_file_open_does(viewer, scan)
    assert [layer.name for layer in viewer.layers] == ["scan", "scan fluid"]
    assert tuple(viewer.layers["scan fluid"].scale) == pytest.approx((120.0, 3.9, 11.8))
    assert np.asarray(viewer.layers["scan fluid"].data)[0, 3, 4] == 1  # the corrections


def test_a_choice_the_user_made_is_kept(fresh):
    get_settings().plugins.extension2reader = {"*.tif": "napari"}
    set_now = preference.prefer_octfluid_reader()
    assert "*.tif" not in set_now and "*.tiff" in set_now
    assert get_settings().plugins.extension2reader["*.tif"] == "napari"


def test_the_notice_is_shown_once_and_a_removed_preference_stays_removed(fresh):
    _, notices = fresh
    assert preference.prefer_octfluid_reader()
    assert preference.prefer_octfluid_reader() == [] and len(notices) == 1
    chosen = dict(get_settings().plugins.extension2reader)
    del chosen["*.tif"]  # the user removes it in Preferences > Plugins
    get_settings().plugins.extension2reader = chosen
    assert preference.prefer_octfluid_reader() == [] and len(notices) == 1
    assert "*.tif" not in get_settings().plugins.extension2reader


def test_the_reader_sets_it_when_octfluid_is_first_used(fresh, scan, tmp_path):
    viewer, notices = fresh
    other = write_tiff(tmp_path / "other.tif", scan_pixels(1), kind="image")
    viewer.open(other, plugin="octfluid")  # octfluid used once (its reader, as the sample and the panel do)
    assert get_settings().plugins.extension2reader["*.tif"] == "octfluid" and len(notices) == 1
    open_as_file_open_does(viewer, scan)
    assert [layer.name for layer in viewer.layers] == ["other", "scan", "scan fluid"]
