"""How long does napari's event loop stall while the Fine-tune widget trains, and while it compares the starting
and the fine-tuned model? (run under a screen:
``xvfb-run -a python benchmarks/bench_ui_stall.py [--weights W] [--steps N]``)

A QTimer fires every 10 ms and records how late it fires: the largest lateness is the longest time the
interface could not react. The comparison (two predictions of the whole scan) used to run on the GUI thread and
froze napari for 38-60 s; it runs in the worker now. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer

from napari_octfluid._qt.finetune import CHECKPOINT
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, save_checkpoint

INTERVAL_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", help="checkpoint to fine-tune (default: an untrained paper-config model)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    weights = args.weights or save_checkpoint(
        Path(tempfile.mkdtemp()) / "untrained.pt", TransUNet(MODEL_CONFIGS["paper"])
    )
    viewer = napari.Viewer()
    viewer.open_sample("octfluid", "duke_subject01")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Fine-tune")
    widget.start_from.value, widget.checkpoint.value = CHECKPOINT, weights
    widget.epochs.value, widget.steps_per_epoch.value, widget.batch_size.value = 2, args.steps // 2, 4
    widget.val_bscans.value = "5"
    lateness: list[float] = []
    when: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        lateness.append((now - last[0]) * 1000 - INTERVAL_MS)
        when.append(now - started[0])
        last[0] = now

    started = [time.perf_counter()]

    timer = QTimer()
    timer.timeout.connect(tick)

    def report(what: str) -> None:
        late = np.array(lateness[5:])
        worst = np.argsort(late)[::-1][:3]
        print(
            f"worst stalls while {what} (ms at s after the click):",
            ", ".join(f"{late[i]:.0f} at {when[5 + i]:.1f}" for i in worst),
        )
        print(
            f"{what}: event-loop lateness max {late.max():.0f} ms, 99th percentile {np.percentile(late, 99):.0f} "
            f"ms, median {np.median(late):.1f} ms over {len(late)} ticks; {widget.status.value}"
        )
        lateness.clear()
        when.clear()
        last[0] = started[0] = time.perf_counter()

    def finish():
        if widget.worker is not None:
            return
        if not compared:
            report(f"training {args.steps} steps of batch 4 at 256x256 in the Fine-tune widget")
            if widget.result is None:  # stopped or failed: nothing to compare
                compared.append(False)
            else:
                compared.append(True)
                widget.predict_with_new_model()  # returns at once: the two predictions run in the worker
                return
        else:
            report("comparing the starting and the fine-tuned model on the whole scan")
        timer.stop()
        poll.stop()
        viewer.close()

    compared: list[bool] = []
    warm_up: list[float] = []

    def start():
        if not widget.warmed_up.is_set():  # a person takes longer than this to set up a training
            QTimer.singleShot(200, start)
            return
        warm_up.extend(lateness[5:])  # the widget's background warm-up, from the event loop's start
        print(
            f"while the Fine-tune widget warms up (once, before any training): lateness max "
            f"{max(warm_up, default=0):.0f} ms over {len(warm_up)} ticks"
        )
        lateness.clear()
        when.clear()
        last[0] = started[0] = time.perf_counter()
        widget.start()
        poll.start(200)

    poll = QTimer()
    poll.timeout.connect(finish)
    timer.start(INTERVAL_MS)
    QTimer.singleShot(1000, start)
    napari.run()


if __name__ == "__main__":
    main()
