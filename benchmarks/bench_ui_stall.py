"""How long does napari's event loop stall during each of octfluid's actions, as a new user does them on a real scan?
(issue 20's target: every action under 100 ms). Run under a screen:

    xvfb-run -a python benchmarks/bench_ui_stall.py [SCAN] [--steps 4] [--no-where]

Actions, in a user's order, each measured by ``_stall.StallMeter`` from the click until its work has ended:

- dock: add the octfluid panel (until its background imports have ended);
- open: a real scan through octfluid's reader (``viewer.open(path, plugin="octfluid")``);
- predict: the Predict tab, shipped weights, on the CPU;
- train: a short fine-tune (``--steps`` steps of batch 2) on B-scans of the prediction;
- compare: Fine-tune's "Predict with the fine-tuned model" (both models over the whole scan);
- quantify: the Quantify tab's Quantify;
- autosave: an edit of the labels, then the review tracker's autosave tick (until the sidecar is written);
- save: File > Save of the labels layer through octfluid's writer.

Then, for reference, what napari itself takes for the layers that open and predict add, in a second napari window
of the same size where no octfluid code runs (a viewer's first layer costs napari more than later ones: it lays out
the dims slider and the layer controls, and draws the canvas inside the call):

- napari open: File > Open of the same scan with napari's own reader (``plugin="napari"``): the first layer of that
  viewer, as the opened scan is in the first;
- napari labels: ``viewer.add_labels`` of the predicted mask's array, in the mask's colours, on that scan.

An action that adds a layer cannot stall less than napari adding it; octfluid's own share is the difference.

SCAN: default a real 25-B-scan UMN DME volume from ``/work/shared/data`` (else the bundled Duke sample), copied
into a temporary folder first: the autosave writes a sidecar beside the scan, never beside the shared data.

Where an action stalls over 100 ms, a sampler thread records the main thread's stack whenever the event loop is late
(a poor man's py-spy: ``sys._current_frames``), and the table is followed by the functions seen most often in those
samples, each with the milliseconds of stall it was on the stack for. Prints figures; asserts nothing. The tabs are
reached through the panel's public ``tool(name)`` (``tools[name]`` for a panel that builds every tab at once).
"""

from __future__ import annotations

import argparse
import faulthandler
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

import napari
import numpy as np
from _stall import StallMeter

from napari_octfluid._sample_data import SAMPLE_SCAN

DEFAULT_SCAN = Path("/work/shared/data/umn_dme/Subject_00_images.tif")
LATE_MS = 50  # the event loop counts as stalled when its 10 ms timer is this late
SAMPLE_S = 0.01
TIMEOUT_S = 900
# what each action needs done before it (``--only``)
NEEDS = {
    "dock": (),
    "open": ("dock",),
    "predict": ("dock", "open"),
    "train": ("dock", "open", "predict"),
    "compare": ("dock", "open", "predict", "train"),
    "quantify": ("dock", "open", "predict"),
    "autosave": ("dock", "open", "predict"),
    "save": ("dock", "open", "predict"),
    "napari open": ("dock", "open"),
    "napari labels": ("dock", "open", "predict", "napari open"),
}
DUMP_AFTER_S = 0.08  # --dump-stalls: every thread's stack once the event loop is this late


class StallSampler:
    """Samples the main thread's stack while ``meter``'s timer is more than ``LATE_MS`` late."""

    def __init__(self, meter: StallMeter) -> None:
        self.meter = meter
        self.samples: list[list[str]] = []
        self._main = threading.main_thread().ident
        self._running = True
        self._here = str(Path(__file__).parent)
        threading.Thread(target=self._run, daemon=True, name="stall-sampler").start()

    def _run(self) -> None:
        while self._running:
            time.sleep(SAMPLE_S)
            if (time.perf_counter() - self.meter._last) * 1000 < LATE_MS:
                continue
            try:
                frame = sys._current_frames()[self._main]
                # code and line only (no f_locals: reading another thread's locals is not safe)
                stack = [
                    f"{Path(f.filename).name}:{f.lineno} {f.name}"
                    for f in traceback.extract_stack(frame)
                    if not f.filename.startswith(self._here)  # the benchmark's own frames: on every sample
                ]
            except Exception:  # noqa: BLE001 - the main thread moved on while it was read: skip this sample
                continue
            self.samples.append(stack)

    def take(self) -> list[list[str]]:
        samples, self.samples = self.samples, []
        return samples

    def stop(self) -> None:
        self._running = False


class StallDumper:
    """Re-arms ``faulthandler.dump_traceback_later`` at each tick of ``meter``'s timer: when the event loop misses
    ticks for ``DUMP_AFTER_S``, the watchdog (a C thread, needs no interpreter lock) writes every thread's stack,
    once per stall (repeated dumps read frames as they change: they crashed the interpreter). A diagnostic: figures
    for a report come from runs without it."""

    def __init__(self, meter: StallMeter, path: Path) -> None:
        self.file = open(path, "w")  # noqa: SIM115 - faulthandler writes to its descriptor until the end
        meter._timer.timeout.connect(self.arm)

    def mark(self, text: str) -> None:
        self.file.write(f"=== {text}\n")
        self.file.flush()

    def arm(self) -> None:
        faulthandler.dump_traceback_later(DUMP_AFTER_S, repeat=False, file=self.file)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()


def where(samples: list[list[str]], top: int = 12) -> str:
    """The frames seen in most stall samples (each counted once per sample), as ms of stall on the stack."""
    counts = Counter(frame for stack in samples for frame in set(stack))
    innermost = Counter(stack[-1] for stack in samples if stack)
    lines = [f"      {count * SAMPLE_S * 1000:6.0f} ms  {frame}" for frame, count in counts.most_common(top)]
    lines += [f"      innermost {n * SAMPLE_S * 1000:5.0f} ms  {frame}" for frame, n in innermost.most_common(4)]
    return "\n".join(lines)


def tool(panel, name: str):
    """A tab's tool, built if the panel builds them when first shown."""
    if hasattr(panel, "tool"):
        return panel.tool(name)
    return panel.tools[name]


def job_busy(widget) -> bool:
    runner = getattr(widget, "jobs", None)
    if runner is not None:
        return runner.busy
    return getattr(widget, "worker", None) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", nargs="?", help="a scan octfluid reads")
    parser.add_argument("--steps", type=int, default=4, help="fine-tuning steps (batch 2)")
    parser.add_argument("--no-where", action="store_true", help="do not sample where the stalls are")
    parser.add_argument("--dump-stalls", type=Path, help="write every thread's stack during stalls to this file")
    parser.add_argument("--only", nargs="+", choices=list(NEEDS), help="only these actions (and those they need)")
    args = parser.parse_args()
    source = Path(args.scan) if args.scan else DEFAULT_SCAN if DEFAULT_SCAN.is_file() else Path(SAMPLE_SCAN)
    folder = Path(tempfile.mkdtemp(prefix="octfluid-stall-"))
    scan = folder / source.name
    shutil.copy(source, scan)

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1366, 768)
    meter = StallMeter()
    sampler = None if args.no_where else StallSampler(meter)
    dumper = None if args.dump_stalls is None else StallDumper(meter, args.dump_stalls)
    state: dict = {}
    where_text: dict[str, str] = {}

    def run(name: str, action) -> None:
        if sampler is not None:
            sampler.take()
        if dumper is not None:
            dumper.mark(name)
        try:
            with meter.action(name):
                action()
        except Exception as error:  # noqa: BLE001 - one failed action must not hide the others' figures
            print(f"{name}: failed: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
        if dumper is not None:
            dumper.disarm()
        stall = meter.results[-1]
        print(
            f"{name}: longest stall {stall.longest_ms:.0f} ms, busiest main-thread CPU {stall.busiest_cpu_ms:.0f} ms, "
            f"took {stall.seconds:.1f} s",
            flush=True,
        )
        if sampler is not None and stall.longest_ms >= 100:
            where_text[name] = where(sampler.take())

    def wait(done, timeout_s: float = TIMEOUT_S) -> None:
        if not meter.wait_until(done, timeout_s=timeout_s):
            raise TimeoutError(f"not done within {timeout_s:.0f} s")

    def dock() -> None:
        _, panel = viewer.window.add_plugin_dock_widget("octfluid")
        state["panel"] = panel
        # the background imports: the interface must stay responsive meanwhile
        if isinstance(getattr(type(panel), "warmed_up", None), property):
            wait(lambda: panel.warmed_up, timeout_s=300)
        elif getattr(panel, "warm_up", None) is not None:
            wait(lambda: not panel.warm_up.is_alive(), timeout_s=300)
        for index in range(panel.count()):  # the user looks at every tab (each is built when first shown)
            panel.setCurrentIndex(index)
            meter.wait_until(lambda: False, timeout_s=0.2)
            tool(panel, panel.tabText(index))
        panel.setCurrentIndex(0)

    def open_scan() -> None:
        layers = viewer.open(str(scan), plugin="octfluid")
        state["scan"] = next(layer for layer in layers if layer._type_string == "image")

    def predict() -> None:
        widget = tool(state["panel"], "Predict")
        widget.scan.value = state["scan"]
        widget.device.value = "cpu"
        widget.run()
        wait(lambda: not job_busy(widget))
        state["labels"] = viewer.layers[f"{state['scan'].name} fluid"]

    def train() -> None:
        widget = tool(state["panel"], "Fine-tune")
        state["finetune"] = widget
        warmed = getattr(widget, "warmed_up", None)
        if warmed is not None:  # a person takes longer than this to set up a training
            meter.wait_until(warmed.is_set, timeout_s=120)
        widget.scan.value, widget.labels_layer.value = state["scan"], state["labels"]
        count = state["labels"].data.shape[0]
        widget.bscans.value = ",".join(map(str, range(count // 2 - 2, count // 2 + 1)))
        widget.val_bscans.value = str(count // 2 + 1)
        widget.device.value = "cpu"
        widget.epochs.value, widget.steps_per_epoch.value, widget.batch_size.value = 1, args.steps, 2
        widget.start()
        wait(lambda: not job_busy(widget))
        if widget.result is None:
            raise RuntimeError(f"the fine-tuning gave no model: {widget.status.value}")

    def compare() -> None:
        widget = state["finetune"]
        widget.predict_with_new_model()
        wait(lambda: not job_busy(widget))

    def quantify() -> None:
        widget = tool(state["panel"], "Quantify")
        widget.labels_layer.value = state["labels"]
        widget.compute()
        wait(lambda: not job_busy(widget))

    def autosave() -> None:
        from napari_octfluid._qt.review_tracking import tracker_for

        labels = state["labels"]
        labels.paint((labels.data.shape[0] // 2, 200, 300), 1, refresh=True)  # a brush stroke
        tracker = tracker_for(labels, viewer)
        tracker.tick()  # what its timer does every 2 s
        pending = getattr(tracker, "_pending", None)
        if pending is not None:
            wait(pending.done, timeout_s=120)

    def save() -> None:
        viewer.layers.selection = {state["labels"]}
        viewer.layers.save(str(folder / "mask.tif"), selected=True, plugin="octfluid")

    def reference_viewer() -> None:  # before the reference actions, not measured
        state["reference"] = napari.Viewer(title="napari alone")
        state["reference"].window._qt_window.resize(1366, 768)
        meter.wait_until(lambda: False, timeout_s=1.0)  # shown and laid out

    def napari_open() -> None:
        state["reference"].open(str(scan), plugin="napari")

    def napari_labels() -> None:
        labels = state["labels"]
        state["reference"].add_labels(np.array(labels.data), name="napari labels", colormap=labels.colormap)

    actions = [
        ("dock", dock),
        ("open", open_scan),
        ("predict", predict),
        ("train", train),
        ("compare", compare),
        ("quantify", quantify),
        ("autosave", autosave),
        ("save", save),
        ("napari open", napari_open),
        ("napari labels", napari_labels),
    ]
    if args.only:
        needed = set()
        for name in args.only:
            needed |= {name, *NEEDS[name]}
        actions = [(name, action) for name, action in actions if name in needed]
    print(f"scan {scan.name} (copied to {folder}); napari {napari.__version__}")

    def go() -> None:
        for name, action in actions:
            if name == "napari open":
                reference_viewer()
            run(name, action)
        if sampler is not None:
            sampler.stop()
        print()
        print(meter.table())
        for name, text in where_text.items():
            print(f"\n{name}: where the main thread was during its stalls (sampled every {SAMPLE_S * 1000:.0f} ms)")
            print(text)
        if "reference" in state:
            state["reference"].close()
        viewer.close()

    from qtpy.QtCore import QTimer

    QTimer.singleShot(500, go)  # from inside napari's event loop, as a user's clicks come
    napari.run()


if __name__ == "__main__":
    main()
