"""Screenshot of napari with a scan opened through octfluid's reader and all octfluid widgets docked.

Run under a screen (xvfb-run -a python docs/take_screenshot.py [SCAN] [OUT.png] [TAB]); used for the docs and
to look at what a user sees.
"""

import sys

import napari
from qtpy.QtCore import QTimer

scan = sys.argv[1] if len(sys.argv) > 1 else None
out = sys.argv[2] if len(sys.argv) > 2 else "docs/screenshot_napari.png"

viewer = napari.Viewer()
viewer.window._qt_window.resize(1600, 1000)
if scan:
    viewer.open(scan, plugin="octfluid")
else:
    viewer.open_sample("octfluid", "duke_subject01")
tab = sys.argv[3] if len(sys.argv) > 3 else "Quantify"
_, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
if tab in panel.tools:
    panel.setCurrentIndex(list(panel.tools).index(tab))
else:  # another dock widget of the manifest, e.g. "Loss explorer"
    viewer.window.add_plugin_dock_widget("octfluid", tab, tabify=True)
viewer.dims.set_current_step(0, 5)
if len(viewer.layers) > 1:
    panel.tools["Quantify"].compute()


predictor = panel.tools["Predict"] if tab == "Predict" else None
if predictor is not None:  # run the shipped model, then take the picture
    predictor.with_probability.value = False
    predictor.run()


def shoot():
    if predictor is not None and predictor.worker is not None:
        QTimer.singleShot(500, shoot)
        return
    viewer.reset_view()  # now that the window has its final size
    viewer.screenshot(out, canvas_only=False)
    print("wrote", out)
    viewer.close()


QTimer.singleShot(1500, shoot)
napari.run()
