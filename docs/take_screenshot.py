"""Screenshot of napari with a scan opened through octfluid's reader and all octfluid widgets docked.

Run under a screen, e.g.
    xvfb-run -a python docs/take_screenshot.py SCAN docs/screenshot_review.png --tab Review --predict --review
    xvfb-run -a python docs/take_screenshot.py SCAN shot.png --tab Fine-tune --predict --finetune MASK \
        --train-bscans 0,24 --val-bscans 15
Used for the docs and to look at what a user sees.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer

from napari_octfluid._qt.panel import TOOLS

parser = argparse.ArgumentParser()
parser.add_argument("scan", nargs="?", help="default: the bundled sample")
parser.add_argument("out", nargs="?", default="docs/screenshot_napari.png")
parser.add_argument("--tab", default="Quantify", help="which octfluid tab (or another widget) to show")
parser.add_argument("--predict", action="store_true", help="run the shipped model first")
parser.add_argument("--review", action="store_true", help="accept one B-scan, correct another, show probability")
parser.add_argument("--bscan", type=int, default=5)
parser.add_argument("--size", default="1600x1000", help="the window's WIDTHxHEIGHT (run under a screen that size)")
parser.add_argument(
    "--finetune",
    metavar="MASK",
    help="copy the expert MASK into the predicted labels of the train and validation B-scans, fine-tune, predict again",
)
parser.add_argument("--advanced", action="store_true", help="open the Fine-tune tab's Advanced settings")
parser.add_argument("--train-bscans", default="0,24")
parser.add_argument("--val-bscans", default="15")
parser.add_argument("--scroll-to-end", action="store_true", help="scroll the tab to its end (Quantify's sectors)")
args = parser.parse_args()

viewer = napari.Viewer()
viewer.window._qt_window.resize(*(int(side) for side in args.size.lower().split("x")))
if args.scan:
    # a copy: the Review dock autosaves corrections beside the scan, which must not land in a data folder
    workdir = tempfile.TemporaryDirectory()
    scan = Path(workdir.name) / Path(args.scan).name
    (shutil.copytree if Path(args.scan).is_dir() else shutil.copy)(args.scan, scan)
    viewer.open(str(scan), plugin="octfluid")
else:
    viewer.open_sample("octfluid", "duke_subject01")
_, panel = viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
if args.tab in TOOLS:
    panel.setCurrentIndex(list(TOOLS).index(args.tab))
else:  # another dock widget of the manifest, e.g. "Loss explorer"
    viewer.window.add_plugin_dock_widget("octfluid", args.tab, tabify=True)
viewer.dims.set_current_step(0, args.bscan)

predictor = panel.tool("Predict") if args.predict else None
if predictor is not None:
    predictor.run()


def after_prediction():
    labels = [layer for layer in viewer.layers if layer._type_string == "labels"]
    if labels and args.review:
        review = panel.tool("Review")
        review.labels_layer.value = labels[-1]
        viewer.dims.set_current_step(0, args.bscan - 1)
        review.toggle_accept()
        viewer.dims.set_current_step(0, args.bscan)
        labels[-1].brush_size = 20
        labels[-1].paint((args.bscan, 40, 60), 2)  # a visible correction in the corner
        review.show_probability.value = True
    if labels and args.finetune:
        from napari_octfluid.io import read_volume

        expert = read_volume(args.finetune).data
        corrected = labels[-1].data.copy()
        for z in map(int, f"{args.train_bscans},{args.val_bscans}".split(",")):
            corrected[z] = expert[z] == 1  # the "correction": the expert's mask
        labels[-1].data = corrected
        tuner = panel.tool("Fine-tune")
        tuner.labels_layer.value = labels[-1]
        tuner.bscans.value, tuner.val_bscans.value = args.train_bscans, args.val_bscans
        tuner.start()
    if args.advanced:  # before the settling wait: the section lays its settings out when it opens
        panel.tool("Fine-tune").advanced.expand()
    if labels:
        quantify = panel.tool("Quantify")
        quantify.labels_layer.value = labels[-1]
        quantify.compute()


def shoot():
    if predictor is not None and predictor.worker is not None:
        QTimer.singleShot(500, shoot)
        return
    if not getattr(shoot, "prepared", False):
        after_prediction()
        shoot.prepared = True
        QTimer.singleShot(800, shoot)  # let the statuses and the plots settle
        return
    tuner = panel.tool("Fine-tune")
    quantifying = "Quantify" in panel.tools and panel.tools["Quantify"].jobs.busy  # computed in its worker
    if (args.finetune and tuner.worker is not None) or quantifying:
        QTimer.singleShot(500, shoot)
        return
    if args.finetune and not getattr(shoot, "compared", False):
        tuner.predict_with_new_model()
        shoot.compared = True
        QTimer.singleShot(800, shoot)
        return
    viewer.reset_view()  # now that the window has its final size
    if args.scroll_to_end:
        bar = panel.currentWidget().verticalScrollBar()
        bar.setValue(bar.maximum())
    viewer.screenshot(args.out, canvas_only=False)
    print("wrote", args.out)
    viewer.close()


QTimer.singleShot(1500, shoot)
napari.run()
