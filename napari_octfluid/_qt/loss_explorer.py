"""Loss explorer dock widget: how each loss of the registry treats a fluid and a background pixel, and the
composite with the user's weights, to help choose and weight losses."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import Container, FloatSpinBox, Select
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..losses import LOSSES, PAPER_TERMS, CompositeLoss
from ..losses.explore import loss_curve

PROBABILITIES = np.linspace(0.01, 0.99, 99)
SINGLE_LOSSES = sorted(name for name in LOSSES if name != "composite")


class LossExplorerWidget(Container):
    def __init__(self, napari_viewer=None) -> None:
        super().__init__()
        self.losses = Select(label="Losses", choices=SINGLE_LOSSES, value=["ce", "focal", "dual_focal", "dice"])
        self.weights = {
            name: FloatSpinBox(label=f"composite: {name}", value=weight, min=0.0, max=10.0, step=0.1)
            for name, weight in PAPER_TERMS
        }
        self.figure = Figure(figsize=(5, 6), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)  # with the fields above, the dock fits a 768 px high screen
        self.extend([self.losses, *self.weights.values()])
        self.native.layout().addWidget(self.canvas)
        for widget in (self.losses, *self.weights.values()):
            widget.changed.connect(self.redraw)
        self.redraw()

    def composite(self) -> CompositeLoss:
        return CompositeLoss([(name, box.value) for name, box in self.weights.items()])

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name -> (loss for a fluid pixel, loss for a background pixel) over PROBABILITIES."""
        chosen = {name: LOSSES[name]() for name in self.losses.value}
        chosen[f"composite ({self.composite().spec})"] = self.composite()
        return {
            name: (loss_curve(loss, PROBABILITIES, 1), loss_curve(loss, PROBABILITIES, 0))
            for name, loss in chosen.items()
        }

    def redraw(self, *_) -> None:
        self.figure.clear()
        fluid_axis, background_axis = self.figure.subplots(2, 1, sharex=True)
        for name, (fluid, background) in self.curves().items():
            style = {"linewidth": 2.5, "color": "black"} if name.startswith("composite") else {}
            fluid_axis.plot(PROBABILITIES, fluid, label=name, **style)
            background_axis.plot(PROBABILITIES, background, label=name, **style)
        fluid_axis.set_title("fluid pixel (target 1)")
        background_axis.set_title("background pixel (target 0)")
        background_axis.set_xlabel("predicted fluid probability")
        for axis in (fluid_axis, background_axis):
            axis.set_ylabel("loss")
            axis.grid(alpha=0.3)
        fluid_axis.legend(fontsize=7)
        self.canvas.draw_idle()
