"""Screenshots of napari with the octfluid panel docked, one PNG of the whole window per tab, at a given screen size
(run under a virtual screen of that size:
``xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/screenshots.py --size 1366x768 --out /work/screens``).

Opens the bundled sample scan (Duke DME subject 1), docks the panel as ``napari -w octfluid`` does, waits until each
tab is built, and saves ``<out>/<width>x<height>_<n>_<tab>.png``; prints the window's size, which must not exceed the
screen's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication


def settle(seconds: float) -> None:
    """Let Qt lay out and paint for a while (the tabs are built in the event loop)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1366x768", help="the screen's WIDTHxHEIGHT in pixels")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)

    viewer = napari.Viewer()
    window = viewer.window._qt_window
    window.move(0, 0)
    window.resize(width, height)
    viewer.open_sample("octfluid", "duke_subject01")
    _, panel = viewer.window.add_plugin_dock_widget("octfluid")
    settle(1.0)
    for index in range(panel.count()):
        name = panel.tabText(index)
        panel.setCurrentIndex(index)
        deadline = time.monotonic() + 120
        while name not in panel.tools and time.monotonic() < deadline:  # built once its module is imported
            settle(0.2)
        settle(1.0)
        path = args.out / f"{width}x{height}_{index + 1}_{name.lower().replace('-', '')}.png"
        window.grab().save(str(path))
        print(f"{path}: window {window.width()}x{window.height()} on a {width}x{height} screen")
    deadline = time.monotonic() + 120
    while not getattr(panel, "warmed_up", True) and time.monotonic() < deadline:  # no import cut short by the exit
        settle(0.2)
    viewer.close()


if __name__ == "__main__":
    main()
