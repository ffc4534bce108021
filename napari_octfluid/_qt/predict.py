"""Predict dock widget: choose scan, weights, device, batch size and threads, then run the model into a Labels layer.

Everything but the layers runs in a worker thread (``jobs.JobRunner``): loading the weights, the model, the review's
uncertainty and the fingerprint of the labels (:func:`load_and_predict`), so that the interface never waits for them
and the prediction takes the command line's time. Layers are only touched here, in the main thread, when the worker
yields or returns.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QMessageBox

from .._layers import META_KEY, REVIEW_KEY, spacing_from_layer
from ..colours import MODEL
from ..devices import DEVICE_CHOICES
from ..inference import PredictEvent, PredictProgress, PredictResult, PredictStarted, predict
from ..model import CheckpointError, load_model
from ..priority import mirrored_disagreement
from ..review import ReviewState
from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path
from ._layer_pick import add_mask, from_file_of, image_picker, is_segmentable, keeping_selection, on_grid_of
from .click_tools import install_click_tools
from .fit_width import wrap_message
from .jobs import JobRunner, Progress
from .mask_colours import colour_mask
from .model_choice import (
    CHECKPOINT_CHOICE,
    DEFAULT_WEIGHTS_CHOICE,
    choose_for_scan,
    chosen_kept_path,
    weights_picker,
)
from .napari_warm_up import warm_up_napari
from .review_tracking import as_volume, review_state, tracker_for

AUTO = 0  # batch size or threads 0: let octfluid choose
FROM_MODEL = -1  # minimum lesion size: the one calibrated with the weights
# how long the job waits for the mask and probability layers to be shown before it ranks the B-scans (a question to
# the user may hold them up: the ranking then goes on beside it)
SHOWN_WAIT_S = 3.0
# a step "at the next turn of the event loop": Qt 5 runs a 0 ms single shot as a posted event, back to back with the
# other posted events (the repaints) before any input or timer; 1 ms makes it a timer, after what is waiting
NEXT_TURN_MS = 1


def checksum(data: np.ndarray) -> str:
    """Fingerprint of a labels array, to tell whether the user edited a prediction since it was made."""
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Prediction:
    """What the worker hands the widget: the prediction (labels and probability shaped as the scan: one B-scan
    stays 2D) with what the layers record of it."""

    result: PredictResult
    labels: np.ndarray
    probability: np.ndarray
    checksum: str
    decision_threshold: float | None


@dataclass(frozen=True)
class MaskReady:
    """Yielded by the job as soon as the mask is made: the widget shows it, then sets ``shown``, and only then does
    the job rank the B-scans. On a 2-core machine the ranking's torch threads took the cores from the interface thread
    while napari added the layers (0.1-0.2 s of its own work), and stretched that freeze by half (measured with
    benchmarks/bench_ui_stall.py); the ranking waits the 0.2-0.3 s instead."""

    prediction: Prediction
    shown: threading.Event = field(default_factory=threading.Event, compare=False)


def load_and_predict(
    scan: np.ndarray,
    weights: Path,
    device: str,
    batch_size: int | None,
    min_lesion_pixels: int | None = None,
    axial_spacing_mm: float | None = None,
) -> Generator[PredictEvent | MaskReady, None, np.ndarray]:
    """The widget's job, all in the worker: the weights loaded (a refused checkpoint raises ``CheckpointError``),
    ``inference.predict`` as ``octfluid predict`` runs it, the mask handed over (:class:`MaskReady`) with its
    fingerprint, then the mirrored pass that ranks the B-scans for review (``priority.mirrored_disagreement``),
    returned: per B-scan, 1 - Dice between the mask and the mirrored one. ``axial_spacing_mm``: the layer's pixel
    size along depth, where known (resampled to the model's when it differs, as ``octfluid predict`` does)."""
    # napari's first Labels of a session costs 0.86 s to build (imports, pandas, first-use set-up), a one-time cost
    # that a tiny one built here, in the worker, takes off the interface thread (measured: 5 ms there after it)
    warm_up_napari()

    model, _ = load_model(weights)
    result = yield from predict(scan, model, device, batch_size, min_lesion_pixels, axial_spacing_mm)
    single = scan.ndim == 2
    labels = result.labels[0] if single else result.labels
    probability = result.fluid_probability[0] if single else result.fluid_probability
    ready = MaskReady(Prediction(result, labels, probability, checksum(labels), model.decision_threshold))
    yield ready
    ready.shown.wait(SHOWN_WAIT_S)
    dice_error, _ = yield from mirrored_disagreement(
        scan,
        model,
        result.labels,
        device,
        batch_size=batch_size,
        min_lesion_pixels=min_lesion_pixels,
        axial_spacing_mm=axial_spacing_mm,
    )
    return dice_error


class PredictWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self._shown = threading.Event()  # the running job's MaskReady.shown: set once its layers are on screen
        self.scan = image_picker()
        # the shipped weights, the models kept by name (chosen for a scan of their device), or a checkpoint file
        self.weights = weights_picker()
        self.checkpoint = FileEdit(label="Checkpoint", filter="*.pt *.pth", visible=False)
        self.device = ComboBox(label="Device", choices=list(DEVICE_CHOICES))
        self.batch_size = SpinBox(label="Batch size (0 = auto)", value=AUTO, min=0, max=512)
        # auto: the cores free when the job starts, chosen as octfluid predict chooses them (devices.choose_threads)
        self.threads = SpinBox(label="Threads (0 = auto)", value=AUTO, min=0, max=os.cpu_count() or 1)
        # fluid regions smaller than this are removed as specks; FROM_MODEL: the size calibrated with the weights
        # (superqt's spin box, under magicgui's, shows no special text for its minimum: the label says it)
        self.min_lesion = SpinBox(label="Min lesion (px, -1 = model's)", value=FROM_MODEL, min=FROM_MODEL, max=100_000)
        self.min_lesion.tooltip = (
            "Fluid regions smaller than this many pixels in a B-scan are removed as specks. -1: the "
            "size chosen on the model's training data (100 px for the shipped weights); 0 keeps every region."
        )
        self.with_probability = CheckBox(text="Show the fluid probability layer", value=False)
        self.run_button = PushButton(text="Predict fluid")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        wrap_message(self.status)  # a long message (a kept model's name, an error) wraps instead of widening the dock
        self.jobs = JobRunner(self.native)
        # whether the running job's mask is shown, or the user kept their own labels instead; its closing message
        self._ranking, self._kept_own, self._done_text = False, False, ""
        self.extend(
            [
                self.scan,
                self.weights,
                self.checkpoint,
                self.device,
                self.batch_size,
                self.threads,
                self.min_lesion,
                self.with_probability,
                self.run_button,
                self.cancel_button,
                self.jobs.progress_widget,  # right under Cancel: the bar and the B-scans done
                self.status,
            ]
        )
        self.weights.changed.connect(lambda choice: setattr(self.checkpoint, "visible", choice == CHECKPOINT_CHOICE))
        self.scan.changed.connect(self.choose_weights_for_scan)
        self.choose_weights_for_scan()
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)

    @property
    def worker(self):
        """The running prediction's worker, None when none runs."""
        return self.jobs.worker

    def choose_weights_for_scan(self, *_) -> None:
        """Offer the models kept by name, and choose the one kept for the device the scan's file records."""
        layer, before = self.scan.value, self.weights.value
        kept = choose_for_scan(self.weights, {} if layer is None else layer.metadata)
        if kept is not None:
            self.status.value = f"Weights: '{kept.name}', kept for {kept.device} scans like this one."
        elif chosen_kept_path(before) is not None and self.weights.value == DEFAULT_WEIGHTS_CHOICE:
            # a model adapted to one device is not used on another: say so rather than switch silently
            self.status.value = (
                "Weights back to the shipped default: the model chosen before was kept for another device's scans."
            )
        elif self.status.value.startswith("Weights: "):
            self.status.value = ""

    def refresh(self, *_) -> None:
        """The tab is shown again: the models kept meanwhile (Fine-tune's Keep) are offered, the choice kept."""
        chosen = self.weights.value
        self.weights.reset_choices()
        if chosen in self.weights.choices:  # (a kept model deleted meanwhile leaves napari's first choice)
            self.weights.value = chosen

    def weights_path(self) -> Path | None:
        if self.weights.value == DEFAULT_WEIGHTS_CHOICE:
            return default_weights_path()
        kept = chosen_kept_path(self.weights.value)
        path = kept if kept is not None else Path(self.checkpoint.value)
        return path if path.is_file() else None

    def min_lesion_pixels(self) -> int | None:
        """The minimum lesion size asked for; None: the model's own (inference.predict's default)."""
        return None if self.min_lesion.value == FROM_MODEL else self.min_lesion.value

    def run(self, *_) -> None:
        layer = self.scan.value
        if layer is None:
            self.status.value = "Open a scan first."
            return
        if self.jobs.busy:
            show_warning("A prediction is already running: wait for it or cancel it.")
            return
        if not is_segmentable(layer, "segment"):
            self.status.value = "This layer is not a greyscale OCT scan."
            return
        weights = self.weights_path()  # the layer first: a wrong layer should not cost a model load
        if weights is None:
            self.status.value = (
                "No weights chosen." if self.weights.value == CHECKPOINT_CHOICE else "No trained weights installed."
            )
            show_warning(
                NO_WEIGHTS_MESSAGE if self.weights.value == DEFAULT_WEIGHTS_CHOICE else "Choose a checkpoint file."
            )
            return
        data = np.asarray(layer.data)
        self._source, self._weights, self._ranking, self._kept_own = layer, weights, False, False
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = "Predicting..."
        self.jobs.start(
            load_and_predict,
            (
                data,
                weights,
                self.device.value,
                self.batch_size.value or None,
                self.min_lesion_pixels(),
                spacing_from_layer(layer.metadata, layer.scale, layer.units)[1],  # the depth axis
            ),
            total=2 * (data.shape[0] if data.ndim == 3 else 1),  # the mask, then the mirrored pass that ranks
            description="Loading the model...",
            on_event=self._on_event,
            on_result=self._on_result,
            on_error=self._on_error,
            on_finished=self._on_finished,
            threads=self.threads.value or None,
        )

    def cancel(self, *_) -> None:
        if self.jobs.stop():  # stops at the next batch; the labels layer is left as it was
            self.status.value = "Cancelling..."

    def _on_event(self, event) -> Progress | None:
        if isinstance(event, MaskReady):
            self._shown = event.shown
            self._ranking = self._show_prediction(event.prediction)
            if not self._ranking:  # the user kept their own labels: nothing to rank
                self._kept_own = self.jobs.stop()
                self._shown.set()
            return None
        if isinstance(event, PredictStarted):
            if self._ranking:
                return Progress(event.n_bscans, "Ranking the B-scans for review...")
            return Progress(0, f"0/{event.n_bscans} B-scans on {event.device}")
        if isinstance(event, PredictProgress):
            if self._ranking:  # the mask is shown: the mirrored pass orders Review's queue
                return Progress(event.total + event.done, f"Ranking for review: {event.done}/{event.total} B-scans")
            return Progress(event.done, f"{event.done}/{event.total} B-scans")
        return None

    def _on_result(self, priority: np.ndarray) -> None:
        """The review priority of the mask shown: Review's queue and table follow it."""
        name = f"{self._source.name} fluid"
        if name in self._viewer.layers:  # (the user may have removed it meanwhile)
            tracker_for(self._viewer.layers[name], self._viewer).session.set_priority(priority)
        self.status.value = self._done_text

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, CheckpointError):
            show_error(str(error))
            self.status.value = "The checkpoint was refused."
            return
        show_error(f"Prediction failed: {error}")
        self.status.value = "Prediction failed."

    def _on_finished(self, stopped: bool) -> None:
        if stopped and not self._kept_own:
            shown = "Ranking cancelled: Review keeps the B-scans in order."  # the mask stays: only the order is lost
            self.status.value = shown if self._ranking else "Cancelled: nothing was changed."
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def confirm_replace(self, name: str) -> bool:
        """Ask before a new prediction overwrites labels the user edited (tests replace this method)."""
        answer = QMessageBox.question(
            self.native,
            "Replace edited labels?",
            f"'{name}' has edits that a new prediction would overwrite. Replace it?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _show_prediction(self, prediction: Prediction) -> bool:
        """The mask into its labels layer (the probability follows); the review priority arrives later. False if
        the user chose to keep the edited labels it would replace."""
        source, result = self._source, prediction.result
        if source.name not in self._viewer.layers:  # removed while it was segmented: no mask without its scan
            self.status.value = f"{source.name!r} was closed while it was segmented: its mask was not added."
            return False
        labels, probability, uncertainty = prediction.labels, prediction.probability, None
        name, prob_name = f"{source.name} fluid", f"{source.name} fluid probability"
        meta = {
            META_KEY: {
                **source.metadata.get(META_KEY, {}),
                "model": str(self._weights),
                "decision_threshold": prediction.decision_threshold,  # where the click tools start adding lesions
                "predicted_checksum": prediction.checksum,
                "probability_layer": prob_name,
            }
        }
        if name in self._viewer.layers:
            existing = self._viewer.layers[name]
            if not self._update_labels(existing, labels, meta, uncertainty):
                return False
            colour_mask(existing, MODEL)  # also labels of the same name a script made, now predicted
            # corrections restored from the autosave (or labels a script made) get the tools a new mask gets
            install_click_tools(self._viewer, existing, dock=False)
        else:
            # the review state in the metadata from the start: Review, which napari tells of the new layer, finds it
            meta[REVIEW_KEY] = ReviewState.start(as_volume(labels), str(self._weights), uncertainty)
            layer = add_mask(self._viewer, labels, name, MODEL, source, metadata=meta, select=False)
            tracker_for(layer, self._viewer)
            # the shortcuts and modifier-clicks only: a dock per predicted scan would crowd a laptop screen
            install_click_tools(self._viewer, layer, dock=False)
        self._done_text = f"Done in {result.seconds:.1f} s on {result.device}."
        self.status.value = self._done_text + " Ranking the B-scans for review..."
        # what follows in later turns of the event loop, each one step, so that the interface reacts in between:
        # napari takes 0.1-0.2 s to add a layer and 20-60 ms to select one (layer controls, restyled buttons)
        done = f"octfluid: fluid predicted for {source.name} on {result.device}"
        QTimer.singleShot(NEXT_TURN_MS, lambda: self._ready_for_brush(name, done, source, prob_name, probability))
        return True

    def _ready_for_brush(self, name: str, done: str, source, prob_name: str, probability: np.ndarray) -> None:
        """The mask selected, for the brush; then, at the next turn, the probability layer."""
        if self.jobs.closed:  # the dock was closed meanwhile
            self._shown.set()
            return
        if name in self._viewer.layers:  # (the user may have removed it meanwhile)
            self._viewer.layers.selection.active = self._viewer.layers[name]
        show_info(done)
        QTimer.singleShot(NEXT_TURN_MS, lambda: self._show_probability(source, prob_name, probability))

    def _show_probability(self, source, name: str, probability: np.ndarray) -> None:
        try:
            if self.jobs.closed:  # the dock was closed meanwhile
                return
            if name in self._viewer.layers:
                self._viewer.layers[name].data = probability
                return
            with keeping_selection(self._viewer):  # the mask stays selected, ready for the brush
                self._viewer.add_image(
                    probability,
                    name=name,
                    **on_grid_of(source),
                    metadata=from_file_of(source),  # a spacing typed in Quantify reaches it too
                    colormap="magma",
                    blending="additive",
                    opacity=0.5,
                    contrast_limits=(0.0, 1.0),
                    visible=self.with_probability.value,
                )
        finally:  # the layers are shown: the job ranks the B-scans, once napari has drawn them (the next turn)
            QTimer.singleShot(NEXT_TURN_MS, self._shown.set)

    def _update_labels(self, existing, labels: np.ndarray, meta: dict, uncertainty: np.ndarray) -> bool:
        """Put a new prediction into existing labels: B-scans the user corrected or accepted are kept; labels
        without a review state are replaced only if the user agrees. False if nothing was changed."""
        state = review_state(existing)
        if state is not None and state.baseline.shape == as_volume(labels).shape:
            merged = state.merge_prediction(
                as_volume(existing.data), as_volume(labels), meta[META_KEY]["model"], uncertainty
            )
            kept = int(state.reviewed.sum())
            existing.metadata[META_KEY] = {**existing.metadata.get(META_KEY, {}), **meta[META_KEY]}
            existing.data = merged if np.ndim(existing.data) == 3 else merged[0]
            if kept:
                show_info(f"octfluid kept your {kept} reviewed B-scan(s) as they were.")
            return True
        edited = existing.metadata.get(META_KEY, {}).get("predicted_checksum") != checksum(existing.data)
        if edited and not self.confirm_replace(existing.name):
            self.status.value = "Kept your edited labels."
            return False
        existing.data = labels
        existing.metadata = {
            **meta,
            REVIEW_KEY: ReviewState.start(as_volume(labels), meta[META_KEY]["model"], uncertainty),
        }
        return True
