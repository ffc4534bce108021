"""Fine-tune dock widget: teach the model from the corrected B-scans in a background thread, with a live plot
of the loss terms and of Dice/Jaccard, Pause/Resume and Stop, then predict with the new model and keep or
revert it.

The widget turns layers into arrays and back; the choice of B-scans, the settings, the run and the comparison are
``training/finetune.py``'s, and they run in a worker thread (``jobs.JobRunner``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
    Table,
)
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QHeaderView, QMessageBox, QSizePolicy, QStyledItemDelegate

from .._layers import META_KEY, recorded_device, spacing_from_layer
from ..colours import FINETUNED
from ..devices import DEVICE_CHOICES
from ..losses import LOSSES, PAPER_TERMS, build_loss
from ..model import CheckpointError
from ..model_library import ModelNameError, checked_name, model_path
from ..training.engine import EpochEnd, StepEnd, TrainResult
from ..training.finetune import (
    ADAPT_BELOW_AGREEMENT,
    CROP_SIDE,
    TRAINED,
    VALIDATION,
    WHOLE_NETWORK,
    BscanChoice,
    Comparison,
    ComparisonProgress,
    FineTuned,
    bscan_roles,
    choose_bscans,
    compare_models,
    finetune_config,
    load_and_finetune,
    n_bscans,
    parse_bscan_list,
    replay_by_default,
    save_fine_tuned,
    warm_up_training_imports,
)
from ..training.parts import TRAINABLE_LABELS
from ..weights import default_weights_path
from ._layer_pick import add_mask, image_picker, is_segmentable, labels_picker
from ._sections import button_row, folded
from .jobs import JobRunner, Progress
from .live_plot import LivePlot
from .mask_colours import colour_mask
from .review_tracking import review_state

SHIPPED = "shipped default"
ROLE_ORDER = {VALIDATION: 0, TRAINED: 1}  # the comparison's rows: validation, trained on, then not used
CHECKPOINT = "checkpoint file..."
PLOT_INTERVAL_S = 1.0  # repaint the step plot at most this often (cheap, but no need for more)
ADAPTED_FIELDS = tuple(WHOLE_NETWORK)  # the settings the adaptive rule may change
NOT_COMPARABLE = "\u2013"  # a dash: Dice on a B-scan nobody reviewed would compare the old model with itself


def _dice_text(dice: float) -> str:
    return f"{dice:.3f}" if np.isfinite(dice) else NOT_COMPARABLE


class FinetuneWidget(Container):
    """The visible part says what fine-tuning will do, in words, and runs it; the settings of the preset
    (``training.finetune.finetune_config``) wait folded under "Advanced", so the tab fits a laptop screen."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self._filled_device = ""  # what "For device" was last filled with from a scan (not typed by the user)
        preset = finetune_config((CROP_SIDE, CROP_SIDE))  # the widget offers the preset's settings to change
        self.jobs = JobRunner(self.native, lambda text: setattr(self.status, "value", text))
        self._build_data_fields()
        self._build_settings(preset)
        self._build_run_controls()
        self._build_result_controls()
        self._lay_out()
        self._connect()
        self.result: TrainResult | None = None
        self._saved_to: Path | None = None  # where Keep saved the current result
        self._trained_on: list[int] = []
        self._validated_on: list[int] = []
        self._job = ""  # what the runner runs: "training", "comparison" or "saving"
        self._base_model = None  # the model the current result started from, loaded in the training's worker
        self._base_path: Path | None = None
        self._compared: tuple = (None, None)  # the result and the scan layer of the comparison that runs
        self._last_draw = 0.0
        self.warmed_up = threading.Event()
        threading.Thread(
            target=warm_up_training_imports, args=(self.warmed_up,), daemon=True, name="octfluid-warm-up"
        ).start()
        self._start_from_labels_model()
        self.describe_plan()
        self.refresh()

    # --- building the widget ---------------------------------------------------------------------------------
    def _build_data_fields(self) -> None:
        self.scan = image_picker()
        self.labels_layer = labels_picker("Corrected labels")
        self.bscans = LineEdit(
            label="Train on B-scans",
            value="",
            tooltip="empty: the B-scans you corrected or accepted in Review. Spread them "
            "through the volume: neighbouring B-scans teach the model less, and "
            "ambiguous ones can teach it wrong",
        )
        self.val_bscans = LineEdit(label="Validate on B-scans", value="", tooltip="held out from training")
        self.summary = Label(value="")

    def _build_settings(self, preset) -> None:
        """The expert settings, each starting at the preset's value."""
        self.start_from = ComboBox(label="Start from", choices=[SHIPPED, CHECKPOINT])
        self.checkpoint = FileEdit(label="Checkpoint", filter="*.pt *.pth", visible=False)
        self.loss = ComboBox(label="Loss", choices=list(LOSSES), value=preset.loss)
        self.weights = {
            name: FloatSpinBox(label=f"weight of {name}", value=w, min=0.0, max=10.0, step=0.1)
            for name, w in PAPER_TERMS
        }
        self.epochs = SpinBox(label="Epochs", value=preset.epochs, min=1, max=1000)
        self.steps_per_epoch = SpinBox(label="Steps per epoch", value=preset.steps_per_epoch, min=1, max=10000)
        self.learning_rate = FloatSpinBox(
            label="Learning rate", value=preset.learning_rate, min=1e-6, max=1.0, step=1e-5
        )
        self.batch_size = SpinBox(label="Batch size", value=preset.batch_size, min=1, max=256)
        self.device = ComboBox(label="Device", choices=list(DEVICE_CHOICES))
        self.trainable = ComboBox(
            label="Adapt",
            value=preset.trainable,
            choices=[(text, name) for name, text in TRAINABLE_LABELS.items()],
            tooltip="decoder only: the encoder and transformer keep what the starting weights "
            "learnt; fewer parameters to over-fit a few B-scans, shorter steps",
        )
        self.change_kept = FloatSpinBox(
            label="Change kept",
            value=preset.change_kept,
            min=0.05,
            max=1.0,
            step=0.05,
            tooltip="the share of the change from the starting weights that the "
            "fine-tuned model keeps (WiSE-FT): 1 keeps all of it; less "
            "forgets less of other scans and learns less from yours",
        )
        self.start_pull = FloatSpinBox(
            label="Hold near start",
            value=preset.start_pull,
            min=0.0,
            max=10000.0,
            step=10.0,
            tooltip="how hard every step pulls the weights back towards the starting ones (L2-SP): 0 lets them "
            "go; more forgets less of other scans and learns less from yours (the whole network on three scans "
            "of another device: 100 forgot 0.04 Dice of the original device where 0 forgot 0.11, and learned 0.02 "
            "less)",
        )
        self.adapt = CheckBox(
            text="Adapt to how far the model disagrees",
            value=True,
            tooltip="first, for a scan whose file gives no axial pixel size, fit the one your corrections agree "
            "with best (a scan from another device: fine-tuning learns at that size, and the new model keeps it); "
            "otherwise measure the starting model's Dice against your corrections, and below "
            f"{ADAPT_BELOW_AGREEMENT:.1f} fine-tune the whole network for 300 steps at 3e-4, held near the starting "
            "weights, and keep all of the change (settings you changed from the preset stay as set); then keep the "
            "model under a name for that device",
        )
        self.replay = CheckBox(
            text="Replay shipped training crops",
            value=replay_by_default(),
            enabled=replay_by_default(),
            tooltip="half of every batch from crops of the B-scans the shipped weights learned "
            "from, so that a few corrections do not make the model forget the rest",
        )

    def _build_run_controls(self) -> None:
        self.plan = Label(value="")
        self.train_button = PushButton(text="Train")
        self.pause_button = PushButton(text="Pause", enabled=False)
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.status = Label(value="")
        for label in (self.status, self.summary, self.plan):  # text that changes must not resize the dock
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot = LivePlot()

    def _build_result_controls(self) -> None:
        self.predict_button = PushButton(text="Predict with the fine-tuned model", enabled=False)
        # short headers: the dock is narrow; the status line above says these are Dice against your labels
        self.compare = Table(value={"B-scan": [], "used for": [], "Dice old": [], "new": []})
        self.compare.native.setMinimumHeight(120)  # a few rows, not one
        self.compare.native.verticalHeader().setVisible(False)  # the B-scan column already numbers the rows
        self.compare.native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Qt's own delegate shows 0.943 as written; magicgui's pads every number to 4 decimals, too wide for the dock
        self.compare.native.setItemDelegate(QStyledItemDelegate(self.compare.native))
        self.keep_name = LineEdit(
            label="Keep as",
            value="",
            tooltip="a name for the fine-tuned model (a clinic, a device): kept in your model folder, "
            "offered by Predict, and chosen there for scans of the device below",
        )
        self.for_device = LineEdit(
            label="For device", value="", tooltip="the device this model is for: the scan's, where its file says"
        )
        self.save_path = FileEdit(label="or save as file", mode="w", filter="*.pt")
        self.keep_button = PushButton(text="Keep (save the model)", enabled=False)
        self.revert_button = PushButton(text="Revert", enabled=False)

    def _lay_out(self) -> None:
        """Top to bottom: the data, what training will do (in words), the expert settings folded, the run and its
        progress, the curves (folded until a training starts), then the comparison and Keep / Revert."""
        run_row = button_row(self.train_button, self.pause_button, self.stop_button)
        progress = self.jobs.progress_widget  # the job's bar and step, under its Pause and Stop buttons
        self.extend([self.scan, self.labels_layer, self.summary, self.plan, run_row, progress, self.status])
        keep_row = button_row(self.keep_button, self.revert_button)
        self.extend([self.predict_button, self.compare, self.keep_name, self.for_device, self.save_path, keep_row])
        advanced = [self.bscans, self.val_bscans, self.start_from, self.checkpoint, self.loss, *self.weights.values()]
        advanced += [self.epochs, self.steps_per_epoch, self.learning_rate, self.batch_size, self.device]
        advanced += [self.adapt, self.trainable, self.change_kept, self.start_pull, self.replay]
        self.advanced = folded("Advanced", advanced)
        self._insert_before(run_row, self.advanced)
        # folded, not a dock of its own: one octfluid dock on a laptop screen; it opens when a training starts
        self.curves = folded("Training curves", [self.plot])
        self._insert_before(self.predict_button, self.curves)

    def _insert_before(self, widget, qt_widget) -> None:
        """Put a plain Qt widget in this container's layout above the row of the magicgui ``widget`` (magicgui
        appends its own widgets at its own count, below any Qt widget added to the layout)."""
        layout = self.native.layout()
        row = next(
            i
            for i in range(layout.count())
            if layout.itemAt(i).widget() is not None
            and (layout.itemAt(i).widget() is widget.native or layout.itemAt(i).widget().isAncestorOf(widget.native))
        )
        layout.insertWidget(row, qt_widget)

    def _connect(self) -> None:
        self.start_from.changed.connect(lambda c: setattr(self.checkpoint, "visible", c == CHECKPOINT))
        self.loss.changed.connect(self._show_weights)
        described = (self.start_from, self.epochs, self.steps_per_epoch, self.batch_size, self.trainable)
        for setting in (*described, self.change_kept, self.start_pull, self.replay, self.adapt):
            setting.changed.connect(self.describe_plan)
        self.labels_layer.changed.connect(self.refresh)
        self.labels_layer.changed.connect(self._start_from_labels_model)
        self.scan.changed.connect(self._fill_device)
        self.bscans.changed.connect(self.refresh)
        self.val_bscans.changed.connect(self.refresh)  # a B-scan held out for validation leaves the training list
        self.train_button.changed.connect(self.start)
        self.pause_button.changed.connect(self.toggle_pause)
        self.stop_button.changed.connect(self.stop)
        self.predict_button.changed.connect(self.predict_with_new_model)
        self.keep_button.changed.connect(self.keep)
        self.revert_button.changed.connect(self.revert)

    @property
    def worker(self):
        """The running job's worker (training or comparison), None when none runs."""
        return self.jobs.worker

    # --- choosing the data -------------------------------------------------------------------------------
    def _show_weights(self, name: str) -> None:
        for box in self.weights.values():
            box.visible = name == "composite"

    def _start_from_labels_model(self, *_) -> None:
        """Start from the model that predicted the labels chosen (their metadata records it): after predicting with
        a model kept for a clinic, fine-tuning started from the shipped weights, and Keep under the clinic's name
        then replaced its model with one that never learned from it."""
        layer = self.labels_layer.value
        recorded = (layer.metadata.get(META_KEY) or {}).get("model") if layer is not None else None
        if not recorded or not Path(recorded).is_file():
            return
        shipped = default_weights_path()
        if shipped is not None and Path(recorded).resolve() == Path(shipped).resolve():
            self.start_from.value = SHIPPED
        else:
            self.start_from.value = CHECKPOINT
            self.checkpoint.value = recorded

    def bscan_choice(self) -> BscanChoice:
        """What the fields and the review state say to train on (cheap: the volume is not read; raises
        ``ValueError`` for a list that cannot be read)."""
        layer = self.labels_layer.value
        count = n_bscans(np.asarray(layer.data))
        state = review_state(layer)
        return BscanChoice(
            parse_bscan_list(self.bscans.value, count),
            parse_bscan_list(self.val_bscans.value, count),
            None if state is None else state.reviewed,
            "" if state is None else state.model,
        )

    def chosen_bscans(self) -> tuple[list[int], list[int]]:
        """Training and validation B-scans (``training.finetune.choose_bscans``): the explicit list; else the
        B-scans corrected or accepted in Review; else, for labels octfluid did not predict (an expert's mask file),
        every B-scan with fluid."""
        choice = self.bscan_choice()
        labels = np.asarray(self.labels_layer.value.data)
        return choose_bscans(labels, choice.explicit, choice.validation, choice.reviewed, choice.model)

    def refresh(self, *_) -> None:
        if self.labels_layer.value is None:
            self.summary.value = "Choose the labels you corrected."
            return
        try:
            chosen, validation = self.chosen_bscans()
        except ValueError as error:
            self.summary.value = str(error)
            return
        if not chosen:
            self.summary.value = (
                "No B-scans to train on yet: correct or accept some in Review, or list them under Advanced."
            )
            return
        shown = ", ".join(map(str, chosen[:20])) + (" ..." if len(chosen) > 20 else "")
        self.summary.value = f"{len(chosen)} B-scans to train on: {shown}" + (
            f"; {len(validation)} to validate on" if validation else ""
        )

    def describe_plan(self, *_) -> None:
        """What Train will do, in words, from the settings under Advanced (the time per 100 steps is the fine-tuning
        benchmark's, docs/finetune_benchmark.md)."""
        start = "the shipped model" if self.start_from.value == SHIPPED else "your checkpoint"
        part = TRAINABLE_LABELS[self.trainable.value]
        steps = self.epochs.value * self.steps_per_epoch.value
        replay = ", replaying the shipped training crops" if self.replay.value else ""
        held = f", held near the start (pull {self.start_pull.value:g})" if self.start_pull.value else ""
        adapted = (
            f"; the whole network and all of the change, held near the start (pull {WHOLE_NETWORK['start_pull']:g}), "
            "if it disagrees with them; at the axial pixel size they fit, where the file gives none"
        )
        self.plan.value = (
            f"Teaches {start} ({part}) from your corrected B-scans: {steps} steps of {self.batch_size.value} crops, "
            f"keeping {self.change_kept.value:.0%} of the change{held}{replay}"
            f"{adapted if self.adapt.value else ''}. "
            "100 steps take about 0.5-1.5 min on a 2-core CPU. Settings under Advanced."
        )

    def loss_spec(self) -> str:
        """The loss chosen, as ``losses.build_loss`` reads it: a registry name, or the composite's weighted terms."""
        if self.loss.value != "composite":
            return self.loss.value
        return " + ".join(f"{box.value:g}*{name}" for name, box in self.weights.items() if box.value > 0)

    def build_loss(self):
        return build_loss(self.loss_spec())

    # --- training ----------------------------------------------------------------------------------------
    def _starting_weights(self) -> Path | None:
        """The file to start from (checked and loaded in the worker: ``training.finetune.load_and_finetune``)."""
        if self.start_from.value == SHIPPED:
            return default_weights_path()
        return Path(self.checkpoint.value) if str(self.checkpoint.value).strip() else None

    def _refuse_while_busy(self) -> bool:
        if self.jobs.busy:
            show_warning(
                "Training is already running: stop it first."
                if self._job == "training"
                else "The fine-tuned model is being saved: wait a moment."
                if self._job == "saving"
                else "The comparison of the models is running: wait for it or stop it first."
            )
        return self.jobs.busy

    def start(self, *_) -> None:
        if self._refuse_while_busy():
            return
        if self.scan.value is None or self.labels_layer.value is None:
            self.status.value = "Choose the scan and its corrected labels."
            return
        try:
            choice = self.bscan_choice()
        except ValueError as error:
            show_error(str(error))
            self.status.value = str(error)
            return
        if not is_segmentable(self.scan.value, "train on"):
            self.status.value = "The scan layer is not a greyscale OCT scan."
            return
        images = np.asarray(self.scan.value.data)
        labels = np.array(self.labels_layer.value.data)  # a copy: the user may paint on while the worker reads it
        if images.shape != labels.shape:
            show_error(f"The scan {images.shape} and the labels {labels.shape} differ in shape.")
            return
        config = finetune_config(
            images.shape,
            loss=self.loss_spec(),  # built in the worker, by the engine
            epochs=self.epochs.value,
            steps_per_epoch=self.steps_per_epoch.value,
            batch_size=self.batch_size.value,
            learning_rate=self.learning_rate.value,
            device=self.device.value,
            trainable=self.trainable.value,
            change_kept=self.change_kept.value,
            start_pull=self.start_pull.value,
        )
        # the settings the user changed from the preset stay as set when fine-tuning adapts (as on the command line)
        preset = finetune_config(images.shape, loss=config.loss, device=config.device)
        changed = {name for name in ADAPTED_FIELDS if getattr(config, name) != getattr(preset, name)}
        self.plot.reset()
        self.curves.expand()  # the curves are what there is to watch now
        self.result = self._base_model = None
        self._trained_on, self._validated_on = [], []
        self._job = "training"
        self._set_running(True, pausable=True)
        self.status.value = "Loading the model to start from..."
        weights = self._starting_weights()
        volume = (images, labels, self.scan.value.name)
        self.jobs.start(
            load_and_finetune,
            (weights, volume, choice, config, self.replay.value, self.adapt.value, self._axial_spacing(), changed),
            total=config.epochs * config.steps_per_epoch,
            description="octfluid: fine-tuning",
            on_event=self._on_event,
            on_result=lambda run: self._on_result(run, weights),
            on_error=self._on_training_error,
            on_finished=self._on_finished,
        )

    def _set_running(self, running: bool, pausable: bool = False) -> None:
        self.train_button.enabled = not running
        self.stop_button.enabled = running
        self.pause_button.enabled = running and pausable
        self.pause_button.text = "Pause"
        offered = self.result is not None and not running
        self.predict_button.enabled = self.keep_button.enabled = self.revert_button.enabled = offered

    def toggle_pause(self, *_) -> None:
        if not self.jobs.busy or self._job != "training":
            return
        paused = self.jobs.toggle_pause()
        self.pause_button.text = "Resume" if paused else "Pause"
        self.status.value = "Paused." if paused else "Training..."

    def stop(self, *_) -> None:
        if self.jobs.stop():
            self.status.value = "Stopping..."

    def _on_event(self, event) -> Progress | None:
        if isinstance(event, StepEnd):
            self.plot.add_step(event)
            if time.monotonic() - self._last_draw > PLOT_INTERVAL_S:
                self.plot.redraw()
                self._last_draw = time.monotonic()
            step = f"step {event.step}/{event.total_steps}"
            return Progress(
                event.step,
                # the step in flight when Pause was pressed ends after it: "Paused." must not give way to it
                f"Paused after {step}."
                if self.jobs.paused
                else f"{step}, loss {event.loss:.4f}, {event.eta_s / 60:.1f} min left",
                event.total_steps,  # adapting may have made the run longer than the bar was started for
            )
        if isinstance(event, EpochEnd):
            self.plot.add_epoch(event)
            self.plot.redraw()
        return None

    def _on_result(self, run: FineTuned, weights: Path) -> None:
        result = run.result
        self.result, self._saved_to = result, None
        self._base_model, self._base_path = run.starting_model, Path(weights)
        self._trained_on, self._validated_on = run.trained_on, run.validated_on
        last = result.history[-1]
        val = f", validation Dice {last.val_dice:.3f}" if last.val_dice is not None else ""
        adapted = ""
        if np.isfinite(run.agreement):
            adapted = f" The starting model agreed with your corrections to Dice {run.agreement:.2f}" + (
                ": fine-tuning went further; keep the model under a name for this device." if run.adapted else "."
            )
        if run.fitted_axial_spacing_mm is not None:
            adapted += (
                f" It takes scans without an axial pixel size as {run.fitted_axial_spacing_mm * 1000:.2f} um per row, "
                "as your corrections fitted: keep it under a name for this device."
            )
        self.status.value = f"Done: training Dice {last.train_dice:.3f}{val}.{adapted}"

    def _on_training_error(self, error: Exception) -> None:
        """A refused checkpoint, no B-scan to train on, or a failure of the run itself."""
        message = str(error) if isinstance(error, (CheckpointError, ValueError)) else f"Training failed: {error}"
        show_error(message)
        self.status.value = message

    def _on_finished(self, stopped: bool) -> None:
        if stopped:
            self.status.value = "Stopped: the model you started from is unchanged."
        self._set_running(False)

    # --- after training ----------------------------------------------------------------------------------
    def predict_with_new_model(self, *_) -> None:
        """Predict the scan with the old and the new model in the worker; the per-B-scan Dice against the corrected
        labels and the new labels layer arrive in ``_on_comparison``."""
        if self.result is None or self._refuse_while_busy():
            return
        if self.scan.value is None or self.labels_layer.value is None:
            self.status.value = "Choose the scan and its corrected labels."
            return
        images = np.asarray(self.scan.value.data)
        reference = np.array(self.labels_layer.value.data)  # a copy: the user may paint on meanwhile
        try:
            used_for = bscan_roles(n_bscans(images), self._trained_on, self._validated_on)
        except ValueError as error:
            self.status.value = f"The scan is not the one the model was fine-tuned on: {error}."
            return
        self._compared = (self.result, self.scan.value)
        spacing = self._axial_spacing()
        self._job = "comparison"
        self._set_running(True)
        self.status.value = "Comparing the starting and the fine-tuned model..."
        self.jobs.start(
            compare_models,
            # batch size None: as prediction chooses it; the scan's axial spacing, as Predict uses it
            (images, reference, self._base_model, self.result.model, used_for, self.device.value, None, spacing),
            total=2 * n_bscans(images),
            description="octfluid: comparing the models",
            on_event=self._on_comparison_event,
            on_result=self._on_comparison,
            on_error=self._on_comparison_error,
            on_finished=self._on_comparison_finished,
        )

    def _on_comparison_event(self, event) -> Progress | None:
        if isinstance(event, ComparisonProgress):
            return Progress(event.done, f"Predicting with the {event.model} model: {event.done}/{event.total} B-scans")
        return None

    def _on_comparison(self, comparison: Comparison) -> None:
        result, source = self._compared
        if result is not self.result:  # reverted or trained again meanwhile: nothing of this is offered any more
            return
        # the rows that judge the model first: of 25 B-scans, the few validated and trained on were below the fold
        order = sorted(range(len(comparison.used_for)), key=lambda z: ROLE_ORDER.get(comparison.used_for[z], 2))
        self.compare.value = {
            "B-scan": order,
            "used for": [comparison.used_for[z] for z in order],
            "Dice old": [_dice_text(comparison.dice_before[z]) for z in order],
            "new": [_dice_text(comparison.dice_after[z]) for z in order],
        }
        name = f"{source.name} fluid (fine-tuned)"
        labels = comparison.labels if np.ndim(source.data) == 3 else comparison.labels[0]
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data = labels
            colour_mask(layer, FINETUNED)  # never the colour of the model's mask or of the reference
        else:  # to look at beside the corrected labels, which stay selected for the brush
            add_mask(self._viewer, labels, name, FINETUNED, source, select=False)
        self.status.value = comparison.summary

    def _on_comparison_error(self, error: Exception) -> None:
        show_error(f"The comparison failed: {error}")
        self.status.value = "The comparison failed."

    def _on_comparison_finished(self, stopped: bool) -> None:
        if stopped:
            self.status.value = "Comparison stopped: nothing was changed."
        self._set_running(False)

    def _axial_spacing(self) -> float | None:
        """The chosen scan's pixel size along depth in mm, where known: training and the comparison resample to the
        model's, as Predict does."""
        layer = self.scan.value
        return None if layer is None else spacing_from_layer(layer.metadata, layer.scale, layer.units)[1]

    def _fill_device(self, *_) -> None:
        """The device the chosen scan's file records, as the default of "For device" (what the user typed stays)."""
        if self.scan.value is None or self.for_device.value.strip() not in ("", self._filled_device):
            return
        self._filled_device = recorded_device(self.scan.value.metadata)
        self.for_device.value = self._filled_device

    def _keep_target(self) -> tuple[Path, str] | None:
        """Where Keep writes (the model folder under "Keep as", else the file chosen) and the name, or None."""
        if self.keep_name.value.strip():
            try:
                return model_path(self.keep_name.value), checked_name(self.keep_name.value)
            except ModelNameError as error:
                show_warning(str(error))
                return None
        target = Path(self.save_path.value)
        if not target.name or target.is_dir():
            show_warning("Name the fine-tuned model (Keep as), or choose a file to save it to.")
            return None
        return target, ""

    def keep(self, *_) -> None:
        """Save the fine-tuned model, in the worker (``training.finetune.save_fine_tuned``): kept by name for a
        device in the model folder, or to a file."""
        if self.result is None or self._refuse_while_busy():
            return
        chosen = self._keep_target()
        if chosen is None:
            return
        target, name = chosen
        if target.exists() and target != self._saved_to and not self.confirm_replace(target, name):
            self.status.value = f"Kept nothing: {target.name} stays as it was; choose another name."
            return
        result = self.result
        self._job = "saving"
        self._set_running(True)
        self.stop_button.enabled = False  # a save is short and has no step to stop at
        self.status.value = f"Saving {target.name}..."
        self.jobs.start(
            save_fine_tuned,
            (target, result, self.loss.value, self._base_path, name, self.for_device.value),
            total=1,
            description="octfluid: saving the fine-tuned model",
            on_result=lambda path: self._on_saved(path, result),
            on_error=self._on_save_error,
            on_finished=lambda stopped: self._set_running(False),
        )

    def confirm_replace(self, target: Path, name: str) -> bool:
        """Ask before Keep replaces a model kept under the same name, or a file (tests replace this method): the
        earlier model, perhaps made for another clinic's device, was overwritten without a word."""
        what = f"A model named '{name}' is already kept" if name else f"{target.name} exists"
        answer = QMessageBox.question(
            self.native, "Replace the kept model?", f"{what}. Replace it with this fine-tuned model?"
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_saved(self, target: Path, result: TrainResult) -> None:
        if result is not self.result:  # reverted meanwhile: the file stays, but the widget offers nothing more
            return
        self._saved_to = target
        show_info(f"Saved the fine-tuned model to {target}")
        device = self.for_device.value.strip()
        self.status.value = (
            f"Kept as '{target.stem}': Predict offers it{f' for scans of {device}' if device else ''}."
            if self.keep_name.value.strip()
            else f"Saved {target.name}; choose it in Predict to use it."
        )

    def _on_save_error(self, error: Exception) -> None:
        show_error(f"The fine-tuned model was not saved: {error}")
        self.status.value = "The fine-tuned model was not saved."

    def revert(self, *_) -> None:
        if self.jobs.busy:
            return
        name = f"{self.scan.value.name} fluid (fine-tuned)" if self.scan.value is not None else None
        if name and name in self._viewer.layers:
            self._viewer.layers.remove(name)
        saved, self.result, self._saved_to = self._saved_to, None, None
        self.predict_button.enabled = self.keep_button.enabled = self.revert_button.enabled = False
        if saved is not None:
            self.status.value = (
                f"Reverted: the fine-tuned model is no longer offered here; the file you saved, "
                f"{saved.name}, stays (choose it in Predict to use it)."
            )
        else:
            self.status.value = "Reverted: the fine-tuned model was discarded."
