"""A live plot of training: each loss term per step, and Dice/Jaccard per epoch on training and validation."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..training.engine import EpochEnd, StepEnd


class LivePlot(FigureCanvasQTAgg):
    def __init__(self) -> None:
        # a fixed layout and fixed legend places: tight_layout and loc="best" cost hundreds of milliseconds per
        # redraw on a slow CPU, all of it in napari's main thread
        self.figure = Figure(figsize=(4.5, 5))
        super().__init__(self.figure)
        self.setMinimumHeight(360)
        self.loss_axis, self.metric_axis = self.figure.subplots(2, 1)
        self.figure.subplots_adjust(left=0.14, right=0.97, top=0.97, bottom=0.1, hspace=0.35)
        self.reset()

    def reset(self) -> None:
        self.steps: list[int] = []
        self.loss_series: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.metric_series: dict[str, list[float]] = {k: [] for k in
                                                       ("train Dice", "train Jaccard", "val Dice", "val Jaccard")}
        self.redraw()

    def add_step(self, event: StepEnd) -> None:
        self.steps.append(event.step)
        values = {"total": event.loss, **event.terms}
        for name, value in values.items():
            self.loss_series.setdefault(name, [float("nan")] * (len(self.steps) - 1)).append(value)

    def add_epoch(self, event: EpochEnd) -> None:
        self.epochs.append(event.epoch)
        for name, value in (("train Dice", event.train_dice), ("train Jaccard", event.train_jaccard),
                            ("val Dice", event.val_dice), ("val Jaccard", event.val_jaccard)):
            self.metric_series[name].append(float("nan") if value is None else value)

    def redraw(self) -> None:
        self.loss_axis.clear()
        for name, values in self.loss_series.items():
            self.loss_axis.plot(self.steps, values, label=name, linewidth=2 if name == "total" else 1)
        self.loss_axis.set_xlabel("step")
        self.loss_axis.set_ylabel("loss")
        self.metric_axis.clear()
        for name, values in self.metric_series.items():
            if any(v == v for v in values):  # skip all-NaN series (no validation B-scans)
                self.metric_axis.plot(self.epochs, values, marker="o", label=name,
                                      linestyle="--" if "Jaccard" in name else "-")
        self.metric_axis.set_xlabel("epoch")
        self.metric_axis.set_ylim(0, 1)
        for axis in (self.loss_axis, self.metric_axis):
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=7, loc="upper right")
        self.draw_idle()
