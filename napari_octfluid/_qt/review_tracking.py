"""Keeps a labels layer's review state in step with the user's edits, and autosaves it next to the scan.

Statuses follow paint and fill at once (napari's ``paint`` event names the touched B-scans), data replacement
through the ``data`` event, and undo/redo (which emit neither) through a timer that re-checks the B-scan on
screen. The same timer hands a copy of the labels to a background thread that writes the sidecar when anything
changed, so a crash loses at most one interval of work and the interface never waits for the disk.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer

from .._layers import META_KEY, REVIEW_KEY
from .._sample_data import SAMPLE_DIR
from ..io.sidecar import save_sidecar, sidecar_path
from ..review import ReviewState

AUTOSAVE_INTERVAL_MS = 2000
_TRACKERS: dict[int, "ReviewTracker"] = {}


def as_volume(data) -> np.ndarray:
    """Labels as ``[Z, Y, X]`` (a single B-scan becomes a volume of one) without copying."""
    array = np.asarray(data)
    return array[None] if array.ndim == 2 else array


def touched_bscans(history_item, ndim: int) -> set[int]:
    """The B-scans a napari paint history item changed (mask atoms carry a bounding box, index atoms indices)."""
    if ndim == 2:
        return {0}
    touched: set[int] = set()
    for atom in history_item:
        key = getattr(atom, "slice_key", None)
        if key is not None:
            first = key[0]
            touched.update(range(first.start or 0, first.stop) if isinstance(first, slice) else [int(first)])
        else:
            touched.update(int(z) for z in np.unique(np.asarray(atom[0][0])))
    return touched


def review_state(layer) -> ReviewState | None:
    state = layer.metadata.get(REVIEW_KEY)
    return state if isinstance(state, ReviewState) else None


class ReviewTracker:
    """Review state and autosave of one napari Labels layer."""

    def __init__(self, layer, viewer=None, interval_ms: int = AUTOSAVE_INTERVAL_MS) -> None:
        self.layer, self._viewer = layer, viewer
        source = layer.metadata.get(META_KEY, {}).get("source")
        # the bundled sample lives inside the installation: never write there
        is_sample = source is not None and Path(source).resolve().parent == SAMPLE_DIR.resolve()
        self.sidecar: Path | None = sidecar_path(source) if source and not is_sample else None
        self.listeners: list[Callable[[], None]] = []  # called when a status changes
        self.save_listeners: list[Callable[[], None]] = []  # called after an autosave, or when one fails
        self.last_saved: float | None = None
        self.save_error: str | None = None
        self._saved: tuple | None = None  # what the sidecar holds: (labels, accepted, model)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="octfluid-autosave")
        self._pending: Future | None = None
        self._touched: set[int] = set()
        layer.events.paint.connect(self._on_paint)
        layer.events.data.connect(self._on_data)
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    @property
    def state(self) -> ReviewState:
        """The layer's review state; labels replaced by others of another shape (or metadata replaced
        wholesale) start a fresh review."""
        state = review_state(self.layer)
        labels = as_volume(self.layer.data)
        if state is None or state.baseline.shape != labels.shape:
            state = ReviewState.start(labels, model=self.layer.metadata.get(META_KEY, {}).get("model", ""))
            self.layer.metadata[REVIEW_KEY] = state
        return state

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    def _on_paint(self, event) -> None:
        # napari announces a programmatic paint or fill before it writes the data: look once control returns
        first = not self._touched
        self._touched |= touched_bscans(event.value, np.ndim(self.layer.data))
        if first:
            QTimer.singleShot(0, self._update_touched)

    def _update_touched(self) -> None:
        touched, self._touched = sorted(self._touched), set()
        if touched and self.state.update(as_volume(self.layer.data), touched).size:
            self._notify()

    def _on_data(self, *_) -> None:
        self.state.update(as_volume(self.layer.data))
        self._notify()

    def current_bscan(self) -> int:
        if self._viewer is None or np.ndim(self.layer.data) == 2:
            return 0
        return int(np.clip(self._viewer.dims.current_step[0], 0, self.state.n_bscans - 1))

    def accept(self, z: int, accepted: bool = True) -> None:
        self.state.accept(z, accepted)
        self._notify()

    def tick(self) -> None:
        """Catch undo/redo on the B-scan on screen, then autosave in the background if anything changed."""
        if self.state.update(as_volume(self.layer.data), [self.current_bscan()]).size:
            self._notify()
        self._collect()
        if self.sidecar is None or (self._pending is not None and not self._pending.done()):
            return
        self._pending = self._executor.submit(self._save_if_changed, *self._snapshot())

    def _snapshot(self) -> tuple[np.ndarray, ReviewState]:
        state = self.state
        copy = ReviewState(state.baseline, state.accepted, state.model, state.uncertainty)  # copies the flags
        return as_volume(self.layer.data).copy(), copy

    def _save_if_changed(self, labels: np.ndarray, state: ReviewState) -> bool:
        if self._saved is not None and self._saved[1].tolist() == state.accepted.tolist() \
                and self._saved[2] == state.model and np.array_equal(self._saved[0], labels):
            return False
        save_sidecar(self.sidecar, labels, state)
        self._saved = (labels, state.accepted.copy(), state.model)
        self.last_saved = time.time()
        return True

    def _collect(self) -> None:
        """Report a failed autosave once (in the main thread), and keep going."""
        if self._pending is None or not self._pending.done():
            return
        error = self._pending.exception()
        wrote = error is None and self._pending.result()
        self._pending = None
        if error is not None and str(error) != self.save_error:
            self.save_error = str(error)
            show_warning(f"octfluid could not autosave your corrections to {self.sidecar}: {error}. "
                         f"Save the labels with File > Save Selected Layers to keep them.")
        elif error is None:
            self.save_error = None
        if wrote or error is not None:
            for listener in list(self.save_listeners):
                listener()

    def save_now(self) -> bool:
        """Save at once, in this thread (closing, tests); True if something was written."""
        if self._pending is not None:
            self._pending.exception()  # wait for the one in flight; its error, if any, is reported below
        self._collect()
        wrote = self.sidecar is not None and self._save_if_changed(*self._snapshot())
        if wrote:
            for listener in list(self.save_listeners):
                listener()
        return wrote

    def close(self) -> None:
        self.timer.stop()
        try:
            self.save_now()
        finally:
            self.layer.events.paint.disconnect(self._on_paint)
            self.layer.events.data.disconnect(self._on_data)
            self._executor.shutdown(wait=True)
            if _TRACKERS.get(id(self.layer)) is self:
                del _TRACKERS[id(self.layer)]


def unwrapped(obj):
    """The object behind napari's PublicOnlyProxy (plugin widgets get proxies, new ones on every access)."""
    return getattr(obj, "__wrapped__", obj)


def tracker_for(layer, viewer=None) -> ReviewTracker:
    """The layer's tracker, created on first use; it stops (saving once more) when the layer is removed."""
    layer = unwrapped(layer)
    tracker = _TRACKERS.get(id(layer))
    if tracker is None:
        tracker = _TRACKERS[id(layer)] = ReviewTracker(layer, viewer)
        if viewer is not None:
            def on_removed(event, tracked=layer) -> None:
                if unwrapped(event.value) is tracked and id(tracked) in _TRACKERS:
                    _TRACKERS[id(tracked)].close()
                    viewer.layers.events.removed.disconnect(on_removed)
            viewer.layers.events.removed.connect(on_removed)
    return tracker
