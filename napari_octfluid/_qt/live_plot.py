"""A live plot of training: each loss term per step (top) and Dice/Jaccard per epoch on training and validation
(bottom), painted with QPainter.

Written by hand rather than with matplotlib because drawing a matplotlib figure stalled napari's interface for
150-450 ms at a time on a 2-core CPU, even from a background thread (its text layout holds the GIL); a few
polylines painted by Qt cost about a millisecond.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..training.engine import EpochEnd, StepEnd

METRICS = ("train Dice", "train Jaccard", "val Dice", "val Jaccard")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 46, 10, 8, 22


def nice_range(values: list[float]) -> tuple[float, float]:
    """Lower and upper bound of the finite values, padded a little (0..1 when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    pad = (high - low) * 0.05 or max(abs(high) * 0.05, 1e-3)
    return low - pad, high + pad


class LivePlot(QWidget):
    def __init__(self) -> None:
        super().__init__()
        # fixed height, width from the dock: a plot that changed the dock's size would make napari re-lay out
        # and redraw its canvas
        self.setFixedHeight(300)
        self.setMinimumWidth(220)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.paints = 0  # how often the plot was painted (tests and benchmarks read it)
        self.reset()

    # --- data
    def reset(self) -> None:
        self.steps: list[int] = []
        self.loss_series: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.metric_series: dict[str, list[float]] = {k: [] for k in METRICS}
        self.redraw()

    def add_step(self, event: StepEnd) -> None:
        self.steps.append(event.step)
        values = {"total": event.loss, **event.terms}
        for name, value in values.items():
            self.loss_series.setdefault(name, [float("nan")] * (len(self.steps) - 1)).append(float(value))

    def add_epoch(self, event: EpochEnd) -> None:
        self.epochs.append(event.epoch)
        for name, value in (
            ("train Dice", event.train_dice),
            ("train Jaccard", event.train_jaccard),
            ("val Dice", event.val_dice),
            ("val Jaccard", event.val_jaccard),
        ):
            self.metric_series[name].append(float("nan") if value is None else float(value))

    def redraw(self) -> None:
        self.update()  # Qt paints at its next chance, merging repeated requests

    # --- painting
    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        font = QFont(painter.font())
        font.setPointSize(7)
        painter.setFont(font)
        half = self.height() / 2
        top = QRectF(0, 0, self.width(), half)
        bottom = QRectF(0, half, self.width(), half)
        loss_x = [float(s) for s in self.steps]
        self._panel(painter, top, loss_x, self.loss_series, "step", "loss", None, markers=False)
        self._panel(
            painter,
            bottom,
            [float(e) for e in self.epochs],
            {k: v for k, v in self.metric_series.items() if any(math.isfinite(x) for x in v)},
            "epoch",
            "Dice / Jaccard",
            (0.0, 1.0),
            markers=True,
        )
        painter.end()
        self.paints += 1

    def _panel(
        self,
        painter: QPainter,
        area: QRectF,
        xs: list[float],
        series: dict[str, list[float]],
        x_label: str,
        y_label: str,
        y_range: tuple[float, float] | None,
        markers: bool,
    ) -> None:
        plot = area.adjusted(MARGIN_LEFT, MARGIN_TOP, -MARGIN_RIGHT, -MARGIN_BOTTOM)
        painter.setPen(QPen(QColor("#999999"), 1))
        painter.drawRect(plot)
        low, high = y_range or nice_range([v for values in series.values() for v in values])
        x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_high == x_low:
            x_low, x_high = x_low - 1, x_high + 1

        def point(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x_low) / (x_high - x_low) * plot.width(),
                plot.bottom() - (y - low) / (high - low) * plot.height(),
            )

        painter.setPen(QColor("#333333"))
        for fraction in (0.0, 0.5, 1.0):  # y ticks: bottom, middle, top
            value = low + fraction * (high - low)
            y = plot.bottom() - fraction * plot.height()
            painter.drawText(
                QRectF(0, y - 7, MARGIN_LEFT - 4, 14),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.3g}",
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + 2, plot.width(), 14),
            Qt.AlignmentFlag.AlignCenter,
            f"{x_label} ({x_low:g}-{x_high:g})" if xs else x_label,
        )
        painter.drawText(QRectF(plot.left() + 4, plot.top() + 2, plot.width(), 14), Qt.AlignmentFlag.AlignLeft, y_label)
        for index, (name, values) in enumerate(series.items()):
            colour = QColor(COLOURS[index % len(COLOURS)])
            pen = QPen(colour, 2 if name == "total" else 1.2)
            if "Jaccard" in name:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            points = [point(x, v) for x, v in zip(xs, values) if math.isfinite(v)]
            if len(points) > 1:
                painter.drawPolyline(QPolygonF(points))
            if markers:
                for p in points:
                    painter.drawEllipse(p, 2.5, 2.5)
            painter.drawText(
                QRectF(plot.right() - 110, plot.top() + 2 + 11 * index, 106, 12), Qt.AlignmentFlag.AlignRight, name
            )
