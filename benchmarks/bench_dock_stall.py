"""How long does napari's event loop stall when the octfluid panel docks, and when each tab is first shown?
(run under a screen: ``xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/bench_dock_stall.py``)

Opens the bundled sample scan in a 1366x768 window, docks the panel as ``napari -w octfluid`` does, and measures with
``_stall.StallMeter`` (a 10 ms timer's lateness) from the dock until the panel's background warm-up has imported
every tool, then each tab's first showing for a second; and, to compare, napari docking an empty widget. Prints
the stalls and the window's size (it must stay 1366x768); asserts nothing.
"""

from __future__ import annotations

import argparse

import napari
from _stall import StallMeter
from qtpy.QtWidgets import QLabel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait at most for the warm-up")
    args = parser.parse_args()
    viewer = napari.Viewer()
    window = viewer.window._qt_window
    window.resize(1366, 768)
    viewer.open_sample("octfluid", "duke_subject01")
    meter = StallMeter()
    meter.wait_until(lambda: False, timeout_s=1.0)  # napari's own start-up settles first
    with meter.action("dock an empty widget (napari's own)"):
        empty = viewer.window.add_dock_widget(QLabel("empty"), name="empty", area="right")
        meter.wait_until(lambda: False, timeout_s=1.0)
    viewer.window.remove_dock_widget(empty)
    meter.wait_until(lambda: False, timeout_s=1.0)
    with meter.action("dock the panel, until warmed up"):
        _, panel = viewer.window.add_plugin_dock_widget("octfluid")
        # older panels built every tool while docking: nothing to wait for
        meter.wait_until(lambda: getattr(panel, "warmed_up", True), timeout_s=args.wait)
    for index in range(panel.count()):
        with meter.action(f"first show of {panel.tabText(index)}"):
            panel.setCurrentIndex(index)
            meter.wait_until(lambda: False, timeout_s=1.0)
    print(meter.table())
    print(f"window after docking and showing every tab: {window.width()}x{window.height()} (screen 1366x768)")
    viewer.close()


if __name__ == "__main__":
    main()
