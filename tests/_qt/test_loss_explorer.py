"""The loss explorer plots the registry's losses and the user's composite, and follows the weights."""

import numpy as np
import pytest

from napari_octfluid._qt.loss_explorer import PROBABILITIES
from napari_octfluid.losses import LOSSES
from napari_octfluid.losses.explore import loss_curve


def test_curves_follow_seed_001_figure_1():
    ce, dfl = LOSSES["ce"](), LOSSES["dual_focal"]()
    # a fluid pixel: every loss falls as the fluid probability rises
    assert np.all(np.diff(loss_curve(ce, PROBABILITIES, 1)) < 0)
    assert np.all(np.diff(loss_curve(dfl, PROBABILITIES, 1)) < 0)
    # a background pixel: DFL rises with a false fluid probability; at p = 0.5 both classes are equally wrong
    background = loss_curve(dfl, PROBABILITIES, 0)
    assert np.all(np.diff(background) > 0)
    assert background[49] == pytest.approx(loss_curve(dfl, PROBABILITIES, 1)[49])


def test_explorer_draws_the_chosen_losses_and_the_weighted_composite(make_napari_viewer):
    viewer = make_napari_viewer()
    _, explorer = viewer.window.add_plugin_dock_widget("octfluid", "Loss explorer")
    assert set(explorer.losses.choices) == set(LOSSES) - {"composite"}
    fluid_axis = explorer.figure.axes[0]
    assert len(fluid_axis.lines) == len(explorer.losses.value) + 1
    before = fluid_axis.lines[-1].get_ydata().copy()
    explorer.weights["wbce"].value = 0.0  # the composite loses its BCE term
    after = explorer.figure.axes[0].lines[-1].get_ydata()
    expected = loss_curve(LOSSES["dice"](), PROBABILITIES, 1) + loss_curve(LOSSES["focal_tversky"](), PROBABILITIES, 1)
    np.testing.assert_allclose(after, expected, rtol=1e-9)
    assert not np.allclose(before, after)
    assert "0*wbce" in explorer.figure.axes[0].lines[-1].get_label()
