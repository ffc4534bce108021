"""The Review tab's table of B-scans: one row per B-scan with its status (its row coloured by it), fluid and the
model's doubt about its mask; the row of the B-scan on screen selected and scrolled to; a click on a row asks to go
there. It shows a :class:`~napari_octfluid.review.ReviewOverview` and computes nothing."""

from __future__ import annotations

from magicgui.widgets import Table
from psygnal import Signal
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QPen
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from ..review import NOT_ANNOTATED, ReviewOverview, Status

COLUMNS = ("B-scan", "status", "fluid pixels", "doubt")  # doubt: priority.mirrored_disagreement, 0 to 1
# Okabe-Ito hues (as in colours.py), translucent so that the text stays readable on napari's dark and light themes
STATUS_COLOURS = {
    Status.CORRECTED.label: "#E69F00",  # orange: the user changed it
    Status.ACCEPTED.label: "#009E73",  # bluish green: the user accepted it as it is
    NOT_ANNOTATED: "#999999",  # grey: nobody annotated it
}
ROW_ALPHA = 110
SELECTED_FRAME = "#56B4E9"  # sky blue: the row of the B-scan on screen
UNCERTAINTY_DECIMALS = 3  # doubt from 0 to 1: 0.012, never 1.150e-02
MINIMUM_ROWS = 8  # rows visible however little room the dock gives; the table takes any room left over
NUMBER_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class FramedSelection(QStyledItemDelegate):
    """Draws the selected row (the B-scan on screen) framed instead of filled, so that its status colour shows."""

    def paint(self, painter, option, index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        super().paint(painter, plain, index)
        if selected:
            painter.save()
            painter.setPen(QPen(QColor(SELECTED_FRAME), 2))
            rect = option.rect.adjusted(0, 1, 0, -1)
            painter.drawLine(rect.topLeft(), rect.topRight())
            painter.drawLine(rect.bottomLeft(), rect.bottomRight())
            painter.restore()


class BscanTable(Table):
    """Read-only table of B-scans; ``bscan_chosen`` is emitted with the B-scan of a row the user clicks or moves to
    with the keyboard."""

    bscan_chosen = Signal(int)

    def __init__(self) -> None:
        super().__init__(value={column: [] for column in COLUMNS})
        self.read_only = True
        table = self.native
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)  # the B-scan column says the same
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._delegate = FramedSelection(table)
        table.setItemDelegate(self._delegate)
        rows = MINIMUM_ROWS * table.verticalHeader().defaultSectionSize()
        table.setMinimumHeight(header.sizeHint().height() + rows + 2 * table.frameWidth())
        table.cellClicked.connect(lambda row, _column: self.bscan_chosen.emit(row))
        table.currentCellChanged.connect(self._on_current_cell)

    def _on_current_cell(self, row: int, _column: int, previous_row: int, _previous_column: int) -> None:
        if row >= 0 and row != previous_row:
            self.bscan_chosen.emit(row)

    def show_overview(self, overview: ReviewOverview | None, current: int = 0) -> None:
        """One row per B-scan of ``overview`` (none for None), the row of ``current`` selected."""
        if overview is None:
            self.value = {column: [] for column in COLUMNS}
            return
        statuses = overview.status_labels()
        uncertainty = overview.uncertainty
        if uncertainty is None:  # labels no model predicted
            uncertainty_text = [""] * len(statuses)
        else:
            uncertainty_text = [f"{u:.{UNCERTAINTY_DECIMALS}f}" for u in uncertainty]
        self.value = {
            "B-scan": list(range(len(statuses))),
            "status": statuses,
            "fluid pixels": [int(p) for p in overview.fluid_pixels],
            "doubt": uncertainty_text,
        }
        table = self.native
        for row, status in enumerate(statuses):
            colour = STATUS_COLOURS.get(status)
            for column in range(len(COLUMNS)):
                item = table.item(row, column)
                if item is None:
                    continue
                if column != 1:
                    item.setTextAlignment(NUMBER_ALIGNMENT)
                if colour is not None:
                    background = QColor(colour)
                    background.setAlpha(ROW_ALPHA)
                    item.setBackground(background)
        self.follow(current)

    def follow(self, bscan: int) -> None:
        """Select the row of ``bscan`` and scroll to it, without asking to go there."""
        table = self.native
        if not 0 <= bscan < table.rowCount():
            return
        blocked = table.blockSignals(True)
        try:
            table.selectRow(bscan)
            table.setCurrentCell(bscan, 0)
        finally:
            table.blockSignals(blocked)
        table.scrollToItem(table.item(bscan, 0), QAbstractItemView.ScrollHint.EnsureVisible)

    def selected_bscan(self) -> int | None:
        rows = {index.row() for index in self.native.selectionModel().selectedRows()}
        return rows.pop() if len(rows) == 1 else None
