"""Is the Predict widget as fast as ``octfluid predict`` on the same scan? Times both, side by side in one process,
alternating, so that a change of load (other programs) hits both alike; prints each run and the ratio of the
medians (the target: the widget within 1.2 times the command line).

    xvfb-run -a python benchmarks/bench_gui_predict.py [SCAN] [--repeats 3] [--weights W] [--device cpu]

SCAN: any scan octfluid reads (default: a real 25-B-scan UMN DME volume from ``/work/shared/data`` where it exists,
else the bundled Duke sample), copied into a temporary folder first: octfluid autosaves a sidecar beside the scan.

- *command line*: what ``octfluid predict`` does between reading the scan and writing the mask (load the weights,
  ``apply_threads``, ``predict`` driven to its end), timed around exactly those calls;
- *widget*: from pressing Predict until the labels layer is in the viewer and the job has ended, with napari's event
  loop running as it does for a user (the scan opened through octfluid's reader, with the default settings).

Each line also shows the seconds the model itself took (``PredictResult.seconds``) and the torch threads, so that a
difference can be told apart: model time (threads, contention) or the work around it (layers, loading).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
import torch
from qtpy.QtCore import QEventLoop, QTimer

from napari_octfluid._qt import predict as predict_widget
from napari_octfluid._sample_data import SAMPLE_SCAN
from napari_octfluid.cli._common import apply_threads
from napari_octfluid.events import drive
from napari_octfluid.inference import PredictResult, predict
from napari_octfluid.io import read_volume
from napari_octfluid.model import load_model
from napari_octfluid.weights import default_weights_path

POLL_MS = 10  # how often the end is checked: the widget's time is known to this much
SETTLE_S = 1.0
DEFAULT_SCAN = Path("/work/shared/data/umn_dme/Subject_00_images.tif")


def settle(seconds: float = SETTLE_S) -> None:
    """Let napari's event loop run idle for a while, as between a user's clicks: the redraw after a layer was removed
    must not count as load when the widget measures the cores free (``devices.choose_threads``)."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()


def command_line_once(scan_data: np.ndarray, weights: Path, device: str) -> tuple[float, float, int]:
    """Wall seconds, model seconds and threads of ``octfluid predict``'s core path."""
    settle()
    start = time.perf_counter()
    model, _ = load_model(weights)
    threads = apply_threads(None)
    result: PredictResult = drive(predict(scan_data, model, device=device))
    return time.perf_counter() - start, result.seconds, threads


def widget_once(viewer, widget, label_name: str) -> tuple[float, float, int]:
    """Wall seconds, model seconds and threads of one press of the Predict widget's button, until the labels and
    probability layers are there (both removed first, so every run makes them anew as the first does). The job
    goes on with the mirrored pass that ranks the B-scans for Review while the user edits the mask: that is waited
    for before the next run, not counted."""
    names = (label_name, f"{label_name} probability")
    for name in names:
        if name in viewer.layers:
            viewer.layers.remove(name)
    settle()
    seen: dict = {}

    def recorded_predict(*args, **kwargs):  # the threads and the model's own seconds, in the widget's worker
        seen.setdefault("threads", torch.get_num_threads())
        result = yield from predict(*args, **kwargs)
        seen.setdefault("seconds", result.seconds)  # the mask's pass (the widget's mirrored pass calls inference)
        return result

    predict_widget.predict = recorded_predict
    ended = []
    loop, poll = QEventLoop(), QTimer()  # napari's event loop runs, idle between events, as for a user

    def check() -> None:
        if not ended and all(name in viewer.layers for name in names):
            ended.append(time.perf_counter())
        if ended and not widget.jobs.busy:
            loop.quit()

    poll.timeout.connect(check)
    start = time.perf_counter()
    widget.run()
    poll.start(POLL_MS)
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    poll.stop()
    wall = ended[0] - start
    predict_widget.predict = predict
    return wall, seen["seconds"], seen["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", nargs="?", help="a scan octfluid reads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    args = parser.parse_args()
    source = Path(args.scan) if args.scan else DEFAULT_SCAN if DEFAULT_SCAN.is_file() else Path(SAMPLE_SCAN)
    scan = Path(tempfile.mkdtemp(prefix="octfluid-bench-")) / source.name
    shutil.copy(source, scan)
    weights = Path(args.weights) if args.weights else default_weights_path()

    viewer = napari.Viewer()
    image = next(layer for layer in viewer.open(str(scan), plugin="octfluid") if layer._type_string == "image")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Predict")
    widget.scan.value = image
    widget.device.value = args.device
    if args.weights:
        from napari_octfluid._qt.predict import CHECKPOINT_CHOICE

        widget.weights.value, widget.checkpoint.value = CHECKPOINT_CHOICE, weights
    label_name = f"{image.name} fluid"
    scan_data = read_volume(scan).data
    print(f"scan {scan.name}: {' x '.join(map(str, scan_data.shape))}, device {args.device}, {torch.__version__}")

    command_line_once(scan_data[:2], weights, args.device)  # warm-up of both paths: first-call costs excluded
    widget_once(viewer, widget, label_name)
    runs: dict[str, list[float]] = {"command line": [], "widget": []}
    for repeat in range(1, args.repeats + 1):
        for name, once in (
            ("command line", lambda: command_line_once(scan_data, weights, args.device)),
            ("widget", lambda: widget_once(viewer, widget, label_name)),
        ):
            wall, model_s, threads = once()
            runs[name].append(wall)
            print(f"  {repeat}. {name:<12}: {wall:6.2f} s (model {model_s:6.2f} s, {threads} thread(s))", flush=True)
    cli, gui = statistics.median(runs["command line"]), statistics.median(runs["widget"])
    print(f"median: command line {cli:.2f} s, widget {gui:.2f} s; widget / command line = {gui / cli:.2f}")
    viewer.close()


if __name__ == "__main__":
    main()
