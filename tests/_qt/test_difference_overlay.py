"""The Review tab's difference overlay through napari: an edited copy of the sample's expert mask compared with the
expert's, the layer in the difference colours, kept current by brush strokes, undo and the slider, with the counts
of the B-scan on screen."""

import numpy as np
import pytest

from napari_octfluid._qt.difference import difference_layer_name
from napari_octfluid.colours import DIFFERENCE, FALSE_NEGATIVE, FALSE_POSITIVE, ROLE_KEY, label_colours
from napari_octfluid.labels import difference_labels


@pytest.fixture
def comparing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    expert = viewer.layers[-1]
    edited = viewer.add_labels(expert.data.copy(), name="edited", scale=expert.scale)
    _, review = viewer.window.add_plugin_dock_widget("octfluid", "Review")
    review.labels_layer.value = edited
    review.difference.reference.value = expert
    review.difference.show_difference.value = True
    viewer.layers.selection.active = edited
    return viewer, review, expert, edited


def settle(qtbot):
    qtbot.wait(50)  # the overlay follows a brush stroke once control returns to the event loop


def test_the_difference_layer_is_added_coloured_and_empty_where_the_masks_agree(comparing):
    viewer, review, expert, edited = comparing
    layer = viewer.layers[difference_layer_name(edited, expert)]
    assert layer.name == f"edited vs {expert.name}"
    assert layer.metadata[ROLE_KEY] == DIFFERENCE and tuple(layer.scale) == tuple(edited.scale)
    for value in (FALSE_POSITIVE, FALSE_NEGATIVE):
        expected = np.asarray(layer.colormap.map(np.array([value])))[0]
        np.testing.assert_allclose(expected[:3], np.asarray(_rgb(label_colours(DIFFERENCE)[value])), atol=1e-2)
    assert not layer.data.any()
    on_screen = viewer.dims.current_step[0]
    assert review.difference.counts.value.startswith(f"B-scan {on_screen}: 0 false positive, 0 false negative")
    assert viewer.layers.selection.active is edited  # the brush stays on the labels under review


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


def test_edits_undo_and_the_slider_keep_the_difference_and_the_counts_current(comparing, qtbot):
    viewer, review, expert, edited = comparing
    layer = review.difference.layer
    truth = expert.data.copy()
    fluid_y, fluid_x = (int(np.median(a)) for a in np.nonzero(truth[5] == 1))  # inside the fluid of B-scan 5
    edited.brush_size = 9

    viewer.dims.set_current_step(0, 9)  # B-scan 9 holds no fluid: painting fluid there is all false positive
    edited.paint((9, 250, 380), 1)
    settle(qtbot)
    painted = int((edited.data[9] != truth[9]).sum())
    assert painted > 0 and int((layer.data[9] == FALSE_POSITIVE).sum()) == painted
    assert review.difference.counts.value.startswith(f"B-scan 9: {painted:,} false positive, 0 false negative")

    viewer.dims.set_current_step(0, 5)
    edited.paint((5, fluid_y, fluid_x), 0)  # erasing the expert's fluid: false negative
    settle(qtbot)
    erased = int((edited.data[5] != truth[5]).sum())
    assert erased > 0 and int((layer.data[5] == FALSE_NEGATIVE).sum()) == erased
    assert f"0 false positive, {erased:,} false negative pixels" in (review.difference.counts.value)
    np.testing.assert_array_equal(layer.data, difference_labels(edited.data, expert.data))

    edited.undo()  # on screen
    settle(qtbot)
    assert not layer.data[5].any() and review.difference.counts.value.startswith("B-scan 5: 0 false positive")
    edited.undo()  # B-scan 9, not on screen: brought up to date when it is shown
    settle(qtbot)
    viewer.dims.set_current_step(0, 9)
    assert not layer.data.any() and review.difference.counts.value.startswith("B-scan 9: 0 false positive")


def test_the_reference_replaced_and_the_overlay_switched_off_or_deleted(comparing, qtbot):
    viewer, review, expert, edited = comparing
    overlay = review.difference
    changed = expert.data.copy()
    changed[3] = 0  # the reference replaced (a second grader's, a script): the whole volume again
    expert.data = changed
    assert int((overlay.layer.data[3] == FALSE_POSITIVE).sum()) == int((edited.data[3] == 1).sum()) > 0

    overlay.show_difference.value = False
    assert difference_layer_name(edited, expert) not in viewer.layers and overlay.layer is None
    overlay.show_difference.value = True
    viewer.layers.remove(difference_layer_name(edited, expert))  # the user deletes it: the check box follows
    assert not overlay.show_difference.value and overlay.layer is None
    overlay.reference.value = edited
    overlay.show_difference.value = True
    assert "these are the labels under review" in overlay.counts.value and overlay.layer is None


def test_the_reference_is_chosen_for_the_user_references_first(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    expert = viewer.layers[-1]
    viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="another scan's labels")  # not the same shape
    edited = viewer.add_labels(expert.data.copy(), name="edited")
    expert.metadata[ROLE_KEY] = "reference"
    copy = viewer.add_labels(expert.data.copy(), name="a copy")  # the same shape, but not a reference
    _, review = viewer.window.add_plugin_dock_widget("octfluid", "Review")
    review.labels_layer.value = edited
    assert review.difference.reference.value is expert
    review.labels_layer.value = expert  # the reference itself under review: the other labels of its shape
    assert review.difference.reference.value in (edited, copy)
