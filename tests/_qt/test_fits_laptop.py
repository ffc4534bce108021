"""On a 1366x768 laptop screen the octfluid panel docks without growing napari's window, and in every tab every
button and input can be reached: it is on the screen, or inside a scroll area whose viewport is on the screen and
scrolls to it. (Before the tabs scrolled, docking grew the window to 1421 px and Accept, Keep and Save were below
the screen's edge.)"""

import pytest
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QWidget,
)

from napari_octfluid._qt._sections import Section

SCREEN = QRect(0, 0, 1366, 768)  # the window is moved to the screen's top-left corner
INPUTS = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QAbstractItemView)
FRAME_PX = 3  # a widget may reach this far under the viewport's edge: its frame, not its text, is hidden
SMALLEST_VIEWPORT = 150  # px of height: a scroll area squeezed to a sliver is not a usable way to reach a field


def on_window(widget: QWidget, window: QWidget) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def scroll_area_around(widget: QWidget) -> QScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


def shown_in(widget: QRect, viewport: QRect) -> bool:
    """Whether the viewport shows all of the widget's height, and all of its width or, for a widget wider than the
    viewport (a long layer name's drop-down on a narrow dock), as much of it as the viewport can."""
    seen = widget.intersected(viewport)
    return (
        seen.height() >= widget.height() - FRAME_PX and seen.width() >= min(widget.width(), viewport.width()) - FRAME_PX
    )


def scroll_to(area: QScrollArea, widget: QWidget) -> None:
    """Scroll ``area`` to show all of ``widget``: ``ensureWidgetVisible``'s own way, with the widget's whole rectangle
    (for a line edit ``ensureWidgetVisible`` shows only its text cursor, at the left end)."""
    centre = widget.mapTo(area.widget(), widget.rect().center())
    area.ensureVisible(centre.x(), centre.y(), widget.width() // 2, widget.height() // 2)
    QApplication.processEvents()


def describe(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    return f"{type(widget).__name__} {text!r}".strip()


def unreachable_inputs(root: QWidget, window: QWidget) -> list[str]:
    """The buttons and inputs under ``root`` shown on ``window`` that are neither inside the screen nor brought
    into a scroll area's on-screen viewport by scrolling to them."""
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INPUTS) or not widget.isVisibleTo(window) or widget.size().isEmpty():
            continue
        area = scroll_area_around(widget)
        if area is None:
            if not SCREEN.contains(on_window(widget, window)):
                missing.append(f"{describe(widget)} at {on_window(widget, window)}: off the screen")
            continue
        viewport = on_window(area.viewport(), window)
        if not SCREEN.contains(viewport) or viewport.height() < SMALLEST_VIEWPORT:
            missing.append(f"{describe(widget)}: its scroll area's viewport {viewport} is not usable on the screen")
            continue
        for _ in range(2):  # again once a scroll bar that appeared has narrowed the viewport
            scroll_to(area, widget)
        viewport = on_window(area.viewport(), window)
        if not shown_in(on_window(widget, window), viewport):
            missing.append(f"{describe(widget)} at {on_window(widget, window)}: the viewport {viewport} cannot show it")
    return missing


@pytest.fixture
def laptop_viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.move(0, 0)
    window.resize(SCREEN.width(), SCREEN.height())
    QApplication.processEvents()
    assert (window.width(), window.height()) == (1366, 768)
    viewer.open_sample("octfluid", "duke_subject01")
    return viewer


def test_every_tab_fits_a_1366x768_screen(laptop_viewer, qtbot):
    window = laptop_viewer.window._qt_window
    _, panel = laptop_viewer.window.add_plugin_dock_widget("octfluid")  # `napari -w octfluid`
    QApplication.processEvents()
    assert window.width() <= SCREEN.width() and window.height() <= SCREEN.height(), "docking grew napari's window"
    problems = {}
    for index in range(panel.count()):
        name = panel.tabText(index)
        panel.setCurrentIndex(index)
        qtbot.waitUntil(lambda name=name: name in panel.tools, timeout=60000)  # built when first shown
        QApplication.processEvents()
        problems[name] = unreachable_inputs(panel, window)
        for section in panel.currentWidget().findChildren(Section):  # "Advanced", "Training curves"...
            section.expand()
        QApplication.processEvents()
        problems[f"{name}, every section open"] = unreachable_inputs(panel, window)
        assert window.width() <= SCREEN.width() and window.height() <= SCREEN.height(), f"{name} grew the window"
    failing = [f"{where}: {found}" for where, found in problems.items() for found in found]
    assert not failing, "\n".join(failing)


def test_the_check_sees_a_button_below_the_screen(laptop_viewer):
    """The check itself can fail: a button placed below the screen's edge, outside any scroll area, is found."""
    window = laptop_viewer.window._qt_window
    holder = QWidget(window)
    holder.setGeometry(0, 0, 300, 2000)
    button = QPushButton("below the edge", holder)
    button.move(10, 900)
    holder.show()
    QApplication.processEvents()
    where = on_window(button, window)
    assert unreachable_inputs(holder, window) == [f"QPushButton 'below the edge' at {where}: off the screen"]
