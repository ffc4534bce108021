"""Layout pieces that keep a dock usable on a 1366x768 laptop screen: a page that scrolls instead of asking napari
for its full height, a folded section for what most users never change, and a row of buttons side by side."""

from __future__ import annotations

from magicgui.widgets import Container, Widget
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QApplication, QFrame, QScrollArea, QToolButton, QVBoxLayout, QWidget

# the width a page asks of napari's window when docked (Qt does not make room for a dock that widens later): a
# share of the screen's width, between two bounds; on a 1366 px screen it leaves the B-scan about 620 px, on a
# 1920 px screen the widest tab needs no sideways scrolling; a tab that needs more scrolls sideways
PAGE_SHARE_OF_SCREEN, NARROWEST_PAGE, WIDEST_PAGE = 0.3, 400, 580


def page_width() -> int:
    screen = QApplication.primaryScreen()
    width = screen.availableGeometry().width() if screen is not None else 0
    return int(min(WIDEST_PAGE, max(NARROWEST_PAGE, PAGE_SHARE_OF_SCREEN * width)))


def scroll_page(content: QWidget) -> QScrollArea:
    """``content`` in a scroll area: the dock then asks napari for a few rows of height, not for all of its fields
    (a tall dock made napari grow its window past the screen)."""
    page = QScrollArea()
    page.setWidgetResizable(True)  # the content takes the dock's width; only what is too tall or too wide scrolls
    page.setFrameShape(QFrame.Shape.NoFrame)
    page.setMinimumWidth(page_width())
    page.setWidget(content)
    return page


class Section(QWidget):
    """A toggle button over content that shows or hides, with the interface of superqt's ``QCollapsible``
    (``toggled``, ``expand``, ``collapse``, ``isExpanded``, ``addWidget``). Hand-written because ``QCollapsible``
    fixes the open content's maximum height when it opens, and so clipped the fields that appeared later (the
    composite loss's weights)."""

    toggled = Signal(bool)  # True: opened

    def __init__(self, title: str) -> None:
        super().__init__()
        self.button = QToolButton()
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.RightArrow)
        self.button.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.content = QWidget()
        QVBoxLayout(self.content).setContentsMargins(0, 0, 0, 0)
        self.content.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.content)
        self.button.toggled.connect(self._show)

    def _show(self, expanded: bool) -> None:
        self.button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.content.setVisible(expanded)
        self.toggled.emit(expanded)

    def addWidget(self, widget: QWidget) -> None:  # noqa: N802 - QCollapsible's name
        self.content.layout().addWidget(widget)

    def expand(self, animate: bool = False) -> None:  # noqa: ARG002 - never animated: each frame re-lays out napari
        self.button.setChecked(True)

    def collapse(self, animate: bool = False) -> None:  # noqa: ARG002
        self.button.setChecked(False)

    def isExpanded(self) -> bool:  # noqa: N802
        return self.button.isChecked()


def folded(title: str, widgets: list[Widget | QWidget], *, expanded: bool = False) -> Section:
    """A section ``title`` over ``widgets``, collapsed unless ``expanded``; magicgui widgets keep their labels (they
    go into one labelled container)."""
    section = Section(title)
    if widgets and all(isinstance(w, Widget) for w in widgets):
        section.addWidget(Container(widgets=widgets).native)
    else:
        for widget in widgets:
            section.addWidget(widget.native if isinstance(widget, Widget) else widget)
    if expanded:
        section.expand()
    return section


def button_row(*buttons: Widget) -> Container:
    """Buttons side by side, to save the dock's height."""
    row = Container(widgets=buttons, layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row
