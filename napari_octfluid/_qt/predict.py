"""Predict dock widget: choose scan, weights, device, batch size and threads, then run the model into a Labels layer.

The model runs in a worker thread (``jobs.JobRunner``); layers are only touched here, in the main thread, when
the worker yields or returns.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QMessageBox

from .._layers import META_KEY, REVIEW_KEY
from ..devices import DEVICE_CHOICES
from ..inference import PredictProgress, PredictResult, predict
from ..model import CheckpointError, load_model
from ..review import ReviewState, bscan_uncertainty
from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path
from ._layer_pick import image_picker, is_segmentable
from .click_tools import install_click_tools
from .jobs import JobRunner, Progress
from .review_tracking import as_volume, review_state, tracker_for

DEFAULT_WEIGHTS_CHOICE = "shipped default"
CHECKPOINT_CHOICE = "checkpoint file..."
AUTO = 0  # batch size or threads 0: let octfluid choose


def checksum(data: np.ndarray) -> str:
    """Fingerprint of a labels array, to tell whether the user edited a prediction since it was made."""
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()


class PredictWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.scan = image_picker()
        self.weights = ComboBox(label="Weights", choices=[DEFAULT_WEIGHTS_CHOICE, CHECKPOINT_CHOICE])
        self.checkpoint = FileEdit(label="Checkpoint", filter="*.pt *.pth", visible=False)
        self.device = ComboBox(label="Device", choices=list(DEVICE_CHOICES))
        self.batch_size = SpinBox(label="Batch size (0 = auto)", value=AUTO, min=0, max=512)
        # auto: the cores free when Predict is pressed, less one for napari (as octfluid predict chooses, less one)
        self.threads = SpinBox(label="Threads (0 = auto)", value=AUTO, min=0, max=os.cpu_count() or 1)
        self.with_probability = CheckBox(text="Show the fluid probability layer", value=False)
        self.run_button = PushButton(text="Predict fluid")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.extend(
            [
                self.scan,
                self.weights,
                self.checkpoint,
                self.device,
                self.batch_size,
                self.threads,
                self.with_probability,
                self.run_button,
                self.cancel_button,
                self.status,
            ]
        )
        self.weights.changed.connect(lambda choice: setattr(self.checkpoint, "visible", choice == CHECKPOINT_CHOICE))
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.jobs = JobRunner(self.native, lambda text: setattr(self.status, "value", text))

    @property
    def worker(self):
        """The running prediction's worker, None when none runs."""
        return self.jobs.worker

    def weights_path(self) -> Path | None:
        if self.weights.value == DEFAULT_WEIGHTS_CHOICE:
            return default_weights_path()
        path = Path(self.checkpoint.value)
        return path if path.is_file() else None

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
        try:
            model, _ = load_model(weights)
        except CheckpointError as error:
            show_error(str(error))
            self.status.value = "The checkpoint was refused."
            return
        data = np.asarray(layer.data)
        self._source, self._weights = layer, weights
        self._decision_threshold = model.decision_threshold
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = "Predicting..."
        self.jobs.start(
            predict,
            (data, model, self.device.value, self.batch_size.value or None),
            total=data.shape[0] if data.ndim == 3 else 1,
            description="octfluid: predicting fluid",
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
        if isinstance(event, PredictProgress):
            return Progress(event.done, f"{event.done}/{event.total} B-scans")
        return None

    def _on_error(self, error: Exception) -> None:
        show_error(f"Prediction failed: {error}")
        self.status.value = "Prediction failed."

    def _on_finished(self, stopped: bool) -> None:
        if stopped:
            self.status.value = "Cancelled: nothing was changed."
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def confirm_replace(self, name: str) -> bool:
        """Ask before a new prediction overwrites labels the user edited (tests replace this method)."""
        answer = QMessageBox.question(
            self.native,
            "Replace edited labels?",
            f"'{name}' has edits that a new prediction would overwrite. Replace it?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_result(self, result: PredictResult) -> None:
        source = self._source
        single = np.asarray(source.data).ndim == 2
        labels = result.labels[0] if single else result.labels
        probability = result.fluid_probability[0] if single else result.fluid_probability
        uncertainty = bscan_uncertainty(result.fluid_probability)
        name, prob_name = f"{source.name} fluid", f"{source.name} fluid probability"
        meta = {
            META_KEY: {
                **source.metadata.get(META_KEY, {}),
                "model": str(self._weights),
                "decision_threshold": self._decision_threshold,  # where the click tools start adding lesions
                "predicted_checksum": checksum(labels),
                "probability_layer": prob_name,
            }
        }
        if name in self._viewer.layers:
            if not self._update_labels(self._viewer.layers[name], labels, meta, uncertainty):
                return
        else:
            layer = self._viewer.add_labels(
                labels, name=name, scale=source.scale, units=source.units, axis_labels=source.axis_labels, metadata=meta
            )
            layer.metadata[REVIEW_KEY] = ReviewState.start(as_volume(labels), str(self._weights), uncertainty)
            tracker_for(layer, self._viewer)
            # the shortcuts and modifier-clicks only: a dock per predicted scan would crowd a laptop screen
            install_click_tools(self._viewer, layer, dock=False)
        if prob_name in self._viewer.layers:
            self._viewer.layers[prob_name].data = probability
        else:
            self._viewer.add_image(
                probability,
                name=prob_name,
                scale=source.scale,
                units=source.units,
                axis_labels=source.axis_labels,
                colormap="magma",
                blending="additive",
                opacity=0.5,
                contrast_limits=(0.0, 1.0),
                visible=self.with_probability.value,
            )
        self._viewer.layers.selection.active = self._viewer.layers[name]  # ready for the brush
        self.status.value = f"Done in {result.seconds:.1f} s on {result.device}."
        show_info(f"octfluid: fluid predicted for {source.name} on {result.device}")

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
