"""Fine-tune dock widget: teach the model from the corrected B-scans in a background thread, with a live plot
of the loss terms and of Dice/Jaccard, Pause/Resume and Stop, then predict with the new model and keep or
revert it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import torch
from magicgui.widgets import (CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label, LineEdit, PushButton,
                              SpinBox, Table)
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QHeaderView, QSizePolicy, QStyledItemDelegate

from ..devices import DEVICE_CHOICES
from ..inference import predict, run_to_end
from ..losses import LOSSES, PAPER_TERMS, CompositeLoss
from ..metrics import confusion
from ..model import CheckpointError, load_model, save_checkpoint
from ..quantify import fluid_pixels_per_bscan
from ..training.data import BscanSet
from ..training.engine import EpochEnd, StepEnd, TrainConfig, TrainNotice, TrainResult, train
from ..training.parts import TRAINABLE_LABELS
from ..training.replay import REPLAY_CROPS, load_replay_crops
from ..weights import default_weights_path
from ._threads import WorkerHost
from ._layer_pick import image_picker, is_segmentable, labels_picker
from .review_tracking import review_state
from .live_plot import LivePlot

SHIPPED = "shipped default"
CHECKPOINT = "checkpoint file..."
PLOT_INTERVAL_S = 1.0  # repaint the step plot at most this often (cheap, but no need for more)


def parse_bscan_list(text: str, n_bscans: int) -> list[int]:
    """'0, 3, 5-7' -> [0, 3, 5, 6, 7]; refuses indices outside the volume."""
    chosen: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise ValueError(f"cannot read {part!r}: write B-scans as '0, 3, 5-7'")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last >= n_bscans or first > last:
            raise ValueError(f"{part!r} is outside B-scans 0..{n_bscans - 1}")
        chosen.extend(range(first, last + 1))
    return sorted(set(chosen))


def _warm_up_training_imports(done: threading.Event) -> None:
    """Import what the first training step imports (building an AdamW optimiser pulls in torch._dynamo, seconds
    of imports that stalled the interface for ~0.3 s at the first step), while the user is still choosing."""
    try:
        parameter = torch.nn.Parameter(torch.zeros(1))
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.AdamW([parameter], lr=1e-3), max_lr=1e-3, total_steps=2)
    finally:
        done.set()


def prepare_and_train(model, volume, chosen: list[int], validation: list[int], config: TrainConfig, loss,
                      replay: bool = False):
    """Runs in the worker thread: normalising the B-scans is work the interface should not wait for."""
    train_data = BscanSet.from_volumes([volume], [chosen])
    val_data = BscanSet.from_volumes([volume], [validation]) if validation else None
    replay_data = load_replay_crops() if replay else None
    return (yield from train(model, train_data, val_data, config, None, loss, replay_data))


def comparison_summary(used_for: np.ndarray, dice_before: np.ndarray, dice_after: np.ndarray) -> str:
    """What the old and new model's Dice against the user's labels says, honestly: only B-scans held out from
    training tell whether the new model is better (on the trained ones it has seen the answer; unreviewed labels are
    the old model's own prediction). The fine-tuning benchmark saw well-trained weights lose Dice."""
    held_out = used_for == "validation"
    if held_out.any():
        before, after = dice_before[held_out].mean(), dice_after[held_out].mean()
        verdict = ("better there: keep it." if after > before else
                   "not better there: Revert is advised (correct more B-scans and train again).")
        return (f"Validation B-scans (not trained on): mean Dice {before:.3f} before, {after:.3f} after; "
                f"the new model is {verdict}")
    trained = used_for == "trained on"
    return (f"Trained B-scans: mean Dice {dice_before[trained].mean():.3f} before, {dice_after[trained].mean():.3f} "
            "after. That says how well it learned them, not how it does on others: keep a corrected B-scan out "
            "of training ('Validate on B-scans') to judge it.")


class FinetuneWidget(WorkerHost, Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.scan = image_picker()
        self.labels_layer = labels_picker("Corrected labels")
        self.bscans = LineEdit(label="Train on B-scans", value="",
                               tooltip="empty: the B-scans you corrected or accepted in Review. Spread them "
                                       "through the volume: neighbouring B-scans teach the model less, and "
                                       "ambiguous ones can teach it wrong")
        self.val_bscans = LineEdit(label="Validate on B-scans", value="", tooltip="held out from training")
        self.summary = Label(value="")
        self.start_from = ComboBox(label="Start from", choices=[SHIPPED, CHECKPOINT])
        self.checkpoint = FileEdit(label="Checkpoint", filter="*.pt *.pth", visible=False)
        self.loss = ComboBox(label="Loss", choices=list(LOSSES), value="composite")
        self.weights = {name: FloatSpinBox(label=f"weight of {name}", value=w, min=0.0, max=10.0, step=0.1)
                        for name, w in PAPER_TERMS}
        self.epochs = SpinBox(label="Epochs", value=5, min=1, max=1000)
        self.steps_per_epoch = SpinBox(label="Steps per epoch", value=20, min=1, max=10000)
        self.learning_rate = FloatSpinBox(label="Learning rate", value=1e-4, min=1e-6, max=1.0, step=1e-5)
        self.batch_size = SpinBox(label="Batch size", value=4, min=1, max=256)
        self.device = ComboBox(label="Device", choices=list(DEVICE_CHOICES))
        # the decoder alone by default: from cross-validation weights it gained as much on the corrected subject and
        # lost less on others than the whole network (docs/finetune_benchmark.md)
        self.trainable = ComboBox(label="Adapt", value="decoder",
                                  choices=[(text, name) for name, text in TRAINABLE_LABELS.items()],
                                  tooltip="decoder only: the encoder and transformer keep what the starting weights "
                                          "learnt; fewer parameters to over-fit a few B-scans, shorter steps")
        # half by default: on the fine-tuning benchmark other subjects lost 0.002 instead of 0.010 and the corrected
        # subject kept +0.014 of its +0.020 (docs/finetune_benchmark.md, "Third measurement")
        self.change_kept = FloatSpinBox(label="Change kept", value=0.5, min=0.05, max=1.0, step=0.05,
                                        tooltip="the share of the change from the starting weights that the "
                                                "fine-tuned model keeps (WiSE-FT): 1 keeps all of it; less "
                                                "forgets less of other scans and learns less from yours")
        self.replay = CheckBox(text="Replay shipped training crops", value=REPLAY_CROPS.is_file(),
                               enabled=REPLAY_CROPS.is_file(),
                               tooltip="half of every batch from crops of the B-scans the shipped weights learned "
                                       "from, so that a few corrections do not make the model forget the rest")
        self.train_button = PushButton(text="Train")
        self.pause_button = PushButton(text="Pause", enabled=False)
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.status = Label(value="")
        self.predict_button = PushButton(text="Predict with the fine-tuned model", enabled=False)
        # short headers: the dock is narrow; the status line above says these are Dice against your labels
        self.compare = Table(value={"B-scan": [], "used for": [], "Dice old": [], "new": []})
        self.compare.native.setMinimumHeight(160)  # a few rows, not one
        self.compare.native.verticalHeader().setVisible(False)  # the B-scan column already numbers the rows
        self.compare.native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Qt's own delegate shows 0.943 as written; magicgui's pads every number to 4 decimals, too wide for the dock
        self.compare.native.setItemDelegate(QStyledItemDelegate(self.compare.native))
        self.save_path = FileEdit(label="Save model as", mode="w", filter="*.pt")
        self.keep_button = PushButton(text="Keep (save the model)", enabled=False)
        self.revert_button = PushButton(text="Revert", enabled=False)
        self.extend([self.scan, self.labels_layer, self.bscans, self.val_bscans, self.summary, self.start_from,
                     self.checkpoint, self.loss, *self.weights.values(), self.epochs, self.steps_per_epoch,
                     self.learning_rate, self.batch_size, self.device, self.trainable, self.change_kept, self.replay,
                     self.train_button, self.pause_button, self.stop_button, self.status])
        for label in (self.status, self.summary):  # text that changes must not resize the dock (see LivePlot)
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot = LivePlot()
        self.native.layout().addWidget(self.plot)
        self.extend([self.predict_button, self.compare, self.save_path, self.keep_button, self.revert_button])
        self.start_from.changed.connect(lambda c: setattr(self.checkpoint, "visible", c == CHECKPOINT))
        self.loss.changed.connect(self._show_weights)
        self.labels_layer.changed.connect(self.refresh)
        self.bscans.changed.connect(self.refresh)
        self.train_button.changed.connect(self.start)
        self.pause_button.changed.connect(self.toggle_pause)
        self.stop_button.changed.connect(self.stop)
        self.predict_button.changed.connect(self.predict_with_new_model)
        self.keep_button.changed.connect(self.keep)
        self.revert_button.changed.connect(self.revert)
        self._init_worker_host()
        self.result: TrainResult | None = None
        self._last_draw = 0.0
        self.warmed_up = threading.Event()
        threading.Thread(target=_warm_up_training_imports, args=(self.warmed_up,), daemon=True,
                         name="octfluid-warm-up").start()
        self.refresh()

    # --- choosing the data -------------------------------------------------------------------------------
    def _show_weights(self, name: str) -> None:
        for box in self.weights.values():
            box.visible = name == "composite"

    def chosen_bscans(self) -> tuple[list[int], list[int]]:
        """Training and validation B-scans: the explicit list; else the B-scans corrected or accepted in Review;
        else, for labels octfluid did not predict (an expert's mask file), every B-scan with labels."""
        layer = self.labels_layer.value
        labels = np.asarray(layer.data)
        n = labels.shape[0] if labels.ndim == 3 else 1
        validation = parse_bscan_list(self.val_bscans.value, n)
        state = review_state(layer)
        if self.bscans.value.strip():
            chosen = parse_bscan_list(self.bscans.value, n)
        elif state is not None and (state.model or state.reviewed.any()):
            chosen = [int(z) for z in np.flatnonzero(state.reviewed)]
        else:
            chosen = [int(z) for z in np.flatnonzero(fluid_pixels_per_bscan(labels) > 0)]
        return [z for z in chosen if z not in validation], validation

    def refresh(self, *_) -> None:
        if self.labels_layer.value is None:
            self.summary.value = "Choose the labels you corrected."
            return
        try:
            chosen, validation = self.chosen_bscans()
        except ValueError as error:
            self.summary.value = str(error)
            return
        shown = ", ".join(map(str, chosen[:20])) + (" ..." if len(chosen) > 20 else "")
        self.summary.value = f"{len(chosen)} B-scans to train on: {shown}" + \
            (f"; {len(validation)} to validate on" if validation else "")

    def build_loss(self):
        if self.loss.value == "composite":
            return CompositeLoss([(name, box.value) for name, box in self.weights.items() if box.value > 0])
        return LOSSES[self.loss.value]()

    # --- training ----------------------------------------------------------------------------------------
    def _initial_model(self):
        path = default_weights_path() if self.start_from.value == SHIPPED else Path(self.checkpoint.value)
        if path is None or not Path(path).is_file():
            raise CheckpointError("No weights to start from: choose a checkpoint file "
                                  "(no trained default weights are installed).")
        return load_model(path)[0], Path(path)

    def start(self, *_) -> None:
        if self.worker is not None:
            show_warning("Training is already running: stop it first.")
            return
        if self.scan.value is None or self.labels_layer.value is None:
            self.status.value = "Choose the scan and its corrected labels."
            return
        try:
            chosen, validation = self.chosen_bscans()
            self._base_model, self._base_path = self._initial_model()
            loss = self.build_loss()
        except (ValueError, CheckpointError) as error:
            show_error(str(error))
            self.status.value = str(error)
            return
        if not chosen:
            self.status.value = "No labelled B-scans to train on."
            return
        if not is_segmentable(self.scan.value, "train on"):
            self.status.value = "The scan layer is not a greyscale OCT scan."
            return
        images = np.asarray(self.scan.value.data)
        labels = (np.asarray(self.labels_layer.value.data) > 0).astype(np.uint8)
        if images.shape != labels.shape:
            show_error(f"The scan {images.shape} and the labels {labels.shape} differ in shape.")
            return
        crop = tuple(min(256, s) for s in images.shape[-2:])
        # BatchNorm statistics stay those of the starting weights: batches of a few crops from a few B-scans
        # would re-estimate them badly (the fine-tuning benchmark lost 0.1 Dice that way)
        config = TrainConfig(loss=getattr(loss, "spec", self.loss.value), epochs=self.epochs.value,
                             steps_per_epoch=self.steps_per_epoch.value, batch_size=self.batch_size.value,
                             crop=crop, learning_rate=self.learning_rate.value, device=self.device.value,
                             freeze_batchnorm=True, trainable=self.trainable.value,
                             change_kept=self.change_kept.value)
        self.plot.reset()
        self.result = None
        self._used_for = {**{z: "trained on" for z in chosen}, **{z: "validation" for z in validation}}
        self._set_running(True)
        self.status.value = "Training..."
        volume = (images, labels, self.scan.value.name)
        self._start_worker(prepare_and_train,
                           (self._base_model, volume, chosen, validation, config, loss, self.replay.value),
                           config.epochs * config.steps_per_epoch, "octfluid: fine-tuning",
                           lambda error: show_error(f"Training failed: {error}"))

    def _set_running(self, running: bool) -> None:
        self.train_button.enabled = not running
        self.pause_button.enabled = self.stop_button.enabled = running
        self.pause_button.text = "Pause"

    def toggle_pause(self, *_) -> None:
        if self.worker is None:
            return
        self.worker.toggle_pause()
        paused = self.pause_button.text == "Pause"
        self.pause_button.text = "Resume" if paused else "Pause"
        self.status.value = "Paused." if paused else "Training..."

    def stop(self, *_) -> None:
        if self.worker is not None:
            if self.pause_button.text == "Resume":
                self.worker.resume()  # a paused generator must run on to see the request to quit
            self.worker.quit()
            self._stop_requested = True
            self.status.value = "Stopping..."

    def _on_event(self, event) -> None:
        if self._stop_requested:  # events queued before the stop took effect change nothing any more
            return
        if isinstance(event, StepEnd):
            self.plot.add_step(event)  # the plot keeps every step, even one Qt delivers after the result
            if self._wants_events() and self._progress is not None:
                self._progress.update(1)
                self.status.value = (f"step {event.step}/{event.total_steps}, loss {event.loss:.4f}, "
                                     f"{event.eta_s / 60:.1f} min left")
            if time.monotonic() - self._last_draw > PLOT_INTERVAL_S:
                self.plot.redraw()
                self._last_draw = time.monotonic()
        elif isinstance(event, EpochEnd):
            self.plot.add_epoch(event)
            self.plot.redraw()
        elif isinstance(event, TrainNotice):
            show_warning(event.message)

    def _on_result(self, result: TrainResult) -> None:
        self._has_result = True  # progress events still queued must not overwrite what it shows
        if self._stop_requested:  # it finished before it saw the stop: the user asked for nothing to change
            return
        self.result = result
        last = result.history[-1]
        val = f", validation Dice {last.val_dice:.3f}" if last.val_dice is not None else ""
        self.status.value = f"Done: training Dice {last.train_dice:.3f}{val}."
        self.predict_button.enabled = self.keep_button.enabled = self.revert_button.enabled = True

    def _on_finished(self) -> None:
        stopped = self._worker_done()
        if self._closed:
            return
        if stopped:
            self.status.value = "Stopped: the model you started from is unchanged."
        self._set_running(False)

    # --- after training ----------------------------------------------------------------------------------
    def predict_with_new_model(self, *_) -> None:
        """Predict the scan with the old and the new model; show per-B-scan Dice against the corrected labels."""
        if self.result is None:
            return
        images = np.asarray(self.scan.value.data)
        reference = np.asarray(self.labels_layer.value.data) > 0
        _, before = run_to_end(predict(images, self._base_model, self.device.value))
        _, after = run_to_end(predict(images, self.result.model, self.device.value))
        dice_before = confusion(before.labels, reference).dice
        dice_after = confusion(after.labels, reference).dice
        used_for = [self._used_for.get(z, "not used") for z in range(len(dice_after))]
        self.compare.value = {"B-scan": list(range(len(dice_after))), "used for": used_for,
                              "Dice old": [f"{d:.3f}" for d in dice_before],
                              "new": [f"{d:.3f}" for d in dice_after]}
        name = f"{self.scan.value.name} fluid (fine-tuned)"
        labels = after.labels if images.ndim == 3 else after.labels[0]
        if name in self._viewer.layers:
            self._viewer.layers[name].data = labels
        else:
            source = self.scan.value
            self._viewer.add_labels(labels, name=name, scale=source.scale, units=source.units,
                                    axis_labels=source.axis_labels)
        self.status.value = comparison_summary(np.array(used_for), dice_before, dice_after)

    def keep(self, *_) -> None:
        if self.result is None:
            return
        target = Path(self.save_path.value)
        if not target.name or target.is_dir():
            show_warning("Choose a file to save the fine-tuned model to.")
            return
        loss = self.result.loss
        save_checkpoint(target, self.result.model, loss_spec=getattr(loss, "spec", self.loss.value),
                        loss_state=loss.state_dict(), fine_tuned_from=str(self._base_path),
                        history=[vars(e) for e in self.result.history])
        show_info(f"Saved the fine-tuned model to {target}")
        self.status.value = f"Saved {target.name}; choose it in Predict to use it."

    def revert(self, *_) -> None:
        name = f"{self.scan.value.name} fluid (fine-tuned)" if self.scan.value is not None else None
        if name and name in self._viewer.layers:
            self._viewer.layers.remove(name)
        self.result = None
        self.predict_button.enabled = self.keep_button.enabled = self.revert_button.enabled = False
        self.status.value = "Reverted: the fine-tuned model was discarded."
