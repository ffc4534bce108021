"""How the widgets add mask layers without the costs that stalled napari (issue 20): coloured from the start, the
selected layer kept where asked; and the warm-ups that take napari's and torch's first-use costs off the interface
thread still leave a working session."""

import subprocess
import sys

import numpy as np
import pytest
from napari.utils.colormaps.standardize_color import transform_color

from napari_octfluid._qt._layer_pick import add_mask, keeping_selection
from napari_octfluid.colours import FINETUNED, MODEL, ROLE_KEY, label_colours


@pytest.fixture
def viewer_with_scan(make_napari_viewer):
    viewer = make_napari_viewer()
    scan = viewer.add_image(np.zeros((3, 8, 8), np.uint8), name="scan", scale=(100.0, 4.0, 12.0))
    return viewer, scan


@pytest.mark.parametrize(("role", "select"), [(MODEL, True), (FINETUNED, False)])
def test_a_mask_is_added_in_its_colours_on_the_scan_grid(viewer_with_scan, role, select):
    viewer, scan = viewer_with_scan
    labels = np.ones((3, 8, 8), np.uint8)
    layer = add_mask(viewer, labels, "mask", role, scan, metadata={"kept": 1}, select=select)
    assert layer.metadata == {"kept": 1, ROLE_KEY: role}
    assert tuple(layer.scale) == (100.0, 4.0, 12.0)
    fluid = label_colours(role)[1]
    np.testing.assert_allclose(layer.colormap.map(1)[:3], transform_color(fluid)[0][:3], atol=1 / 255)
    assert (viewer.layers.selection.active is layer) == select  # else the scan stays selected


def test_keeping_selection_restores_napari_behaviour_even_after_an_error(viewer_with_scan):
    viewer, scan = viewer_with_scan
    with pytest.raises(RuntimeError), keeping_selection(viewer):
        viewer.add_labels(np.zeros((3, 8, 8), np.uint8), name="kept out")
        assert viewer.layers.selection.active is scan
        raise RuntimeError("the widget failed half-way")
    added = viewer.add_labels(np.zeros((3, 8, 8), np.uint8), name="selected as napari does")
    assert viewer.layers.selection.active is added


def test_torch_works_after_its_libraries_were_loaded_without_the_interpreter_lock():
    """In a fresh interpreter (the preload does nothing once torch is imported): the libraries load, then torch
    imports and computes."""
    code = (
        "from napari_octfluid._qt.gil_free_preload import preload_torch_libraries\n"
        "loaded = preload_torch_libraries()\n"
        "import torch\n"
        "print(sorted(loaded), float(torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    names, value = out.stdout.rsplit(" ", 1)
    assert float(value) == 9.0
    if sys.platform.startswith("linux"):
        assert "libtorch_cpu.so" in names and "libc10.so" in names


def test_the_preload_does_nothing_once_torch_is_imported():
    import torch  # noqa: F401 - imported by the test session anyway

    from napari_octfluid._qt.gil_free_preload import preload_torch_libraries

    assert preload_torch_libraries() == []


@pytest.mark.parametrize("wait", [True, False])
def test_review_follows_a_layer_napari_adds_after_napari_has_added_it(make_napari_viewer, qtbot, wait):
    """Not inside napari's insertion of the layer (one event-loop turn with napari's own 0.1-0.2 s) but at the next
    turn; a script that reads the widget at once still finds the new layer under review."""
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    review = panel.tool("Review")
    labels = viewer.add_labels(np.zeros((3, 16, 16), np.uint8), name="mask")
    assert review.labels_layer.value is labels and review._tracker is None
    if wait:
        qtbot.waitUntil(lambda: review._tracker is not None, timeout=5000)
    assert review.tracker.layer is labels and review.status.value.startswith("0 of 3 reviewed")


def test_objects_stay_frozen_while_a_widget_frozen_for_lives(monkeypatch):
    """gc_freeze.py: a full collection skips what the session made before the panel's warm-up ended, until the last
    panel frozen for is destroyed; then everything is collectable again."""
    import gc

    from qtpy.QtCore import QObject

    from napari_octfluid._qt import gc_freeze
    from napari_octfluid._qt.gc_freeze import freeze_while_alive

    gc.unfreeze()
    monkeypatch.setattr(gc_freeze, "_holders", 0)  # panels of earlier tests that Qt has not destroyed yet
    first, second = QObject(), QObject()
    freeze_while_alive(first)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # this test session's modules, at least
    freeze_while_alive(second)
    del first  # a QObject without a parent: its C++ object goes with it, and Qt emits destroyed
    assert gc.get_freeze_count() > frozen // 2  # the second still holds the freeze (less the objects freed)
    del second
    assert gc.get_freeze_count() == 0


def test_the_panel_freezes_the_session_objects_once_warmed_up(make_napari_viewer, qtbot):
    import gc

    gc.unfreeze()
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    qtbot.waitUntil(lambda: panel.warmed_up and gc.get_freeze_count() > 0, timeout=60000)


@pytest.fixture
def collections_restored(monkeypatch):
    """Automatic collections as they were before the test, whatever it paused."""
    import gc

    from napari_octfluid._qt import gc_freeze

    monkeypatch.setattr(gc_freeze, "_pauses", 0)  # a panel of an earlier test may still be warming up
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.parametrize(
    ("enabled_before", "steps", "enabled_after_each"),
    [
        (True, ["a.start", "a.end"], [False, True]),
        (True, ["a.start", "a.start", "a.end", "a.end"], [False, False, True, True]),  # each call idempotent
        (True, ["a.start", "b.start", "a.end", "b.end"], [False, False, False, True]),  # two panels' pauses nest
        (True, ["a.end", "a.start", "a.end"], [True, False, True]),  # an end before any start does nothing
        (False, ["a.start", "a.end"], [False, False]),  # collections off before stay off
    ],
)
def test_a_collection_pause_turns_collections_off_and_back_as_they_were(
    collections_restored, enabled_before, steps, enabled_after_each
):
    import gc

    from napari_octfluid._qt.gc_freeze import CollectionPause

    (gc.enable if enabled_before else gc.disable)()
    pauses = {"a": CollectionPause(), "b": CollectionPause()}
    seen = []
    for step in steps:
        name, call = step.split(".")
        getattr(pauses[name], call)()
        seen.append(gc.isenabled())
    assert seen == enabled_after_each


@pytest.fixture
def held_warm_up(monkeypatch):
    """The panel's warm-up held at its start until the test lets it go (in a session that imported everything
    already it would end before a test could look)."""
    import threading

    from napari_octfluid._qt import panel as panel_module

    go_on, started = threading.Event(), threading.Event()
    real = panel_module.warm_up_napari

    def held():
        started.set()
        go_on.wait(30)
        real()

    monkeypatch.setattr(panel_module, "warm_up_napari", held)
    yield started, go_on
    go_on.set()


@pytest.fixture
def panel_warming_up(make_napari_viewer, qtbot, collections_restored, held_warm_up):
    """A viewer with the octfluid panel docked, its warm-up started and held, collections on before it: (viewer,
    dock widget, panel, the event that lets the warm-up go on)."""
    import gc

    started, go_on = held_warm_up
    gc.enable()
    viewer = make_napari_viewer()
    widget, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    qtbot.waitUntil(started.is_set, timeout=10000)
    return viewer, widget, panel, go_on


def test_collections_are_paused_while_the_panel_warms_up_and_back_after(panel_warming_up, qtbot):
    import gc

    _, _, panel, go_on = panel_warming_up
    assert not gc.isenabled()  # the warm-up's imports: no full collection holds the interface meanwhile
    go_on.set()
    qtbot.waitUntil(lambda: panel.warmed_up and gc.get_freeze_count() > 0, timeout=60000)
    qtbot.waitUntil(gc.isenabled, timeout=5000)


def test_closing_the_panel_during_its_warm_up_turns_collections_back_on(panel_warming_up, qtbot):
    import gc

    viewer, widget, panel, go_on = panel_warming_up
    assert not gc.isenabled()
    thread = panel.warm_up
    viewer.window.remove_dock_widget(widget)
    panel.deleteLater()
    qtbot.wait(50)  # Qt deletes the panel
    go_on.set()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=60000)
    qtbot.waitUntil(gc.isenabled, timeout=5000)  # no panel is left to freeze and end the pause


def test_the_warm_up_builds_vispys_dash_patterns_once_for_the_session():
    """Every shown Labels layer builds vispy's 13 dash patterns (55 ms when the first mask appeared): the warm-up
    fills vispy's cache of them, so a mask's layer finds them there."""
    from vispy.visuals.line import dash_atlas

    from napari_octfluid._qt.napari_warm_up import warm_up_napari

    dash_atlas._make_pattern.cache_clear()
    warm_up_napari()
    filled = dash_atlas._make_pattern.cache_info()
    assert filled.currsize == 13
    dash_atlas.DashAtlas()  # what a labels layer's polygon overlay builds
    assert dash_atlas._make_pattern.cache_info().misses == filled.misses
