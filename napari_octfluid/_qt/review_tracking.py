"""Binds a :class:`~napari_octfluid.review.ReviewSession` to a napari Labels layer and autosaves it next to the scan:
the napari and Qt half of the review, which decides nothing itself.

napari's ``paint`` event names the B-scans a brush stroke or fill touched (the session re-derives them once the data
is written), the ``data`` event announces replaced labels, and the ``metadata`` event a review state put there by
someone else (a new prediction). Undo and redo announce nothing but a redraw (``set_data``, when the layer is
visible), so on each redraw, on every tick of the autosave timer and whenever someone reads the state
(:func:`review_state`: Fine-tune choosing what to train on, Predict keeping reviewed B-scans), the session re-checks
every B-scan an edit ever touched, on screen or not. Edits made before the layer was tracked count too: the tracker
starts by watching every B-scan in napari's undo and redo history, which outlives a tracker.

The same timer hands a copy of the labels to a background thread that writes the sidecar when anything changed, so
a crash loses at most one interval of work and the interface never waits for the disk.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer

from .._layers import META_KEY, REVIEW_KEY, saved_spacing
from .._sample_data import SAMPLE_DIR
from ..io.scan_identity import SCAN_IDENTITY_KEY, ScanIdentity
from ..io.sidecar import RESTORED_SIDECAR_KEY, keep_unrestored_sidecar, save_sidecar, sidecar_path
from ..review import AutosaveLedger, AutosaveSnapshot, ReviewSession, ReviewState, Signal

AUTOSAVE_INTERVAL_MS = 2000
_TRACKERS: dict[int, "ReviewTracker"] = {}
_OPENED = itertools.count()  # the order trackers started in: the first of a scan's copies owns its sidecar


def as_volume(data) -> np.ndarray:
    """Labels as ``[Z, Y, X]`` (a single B-scan becomes a volume of one) without copying."""
    array = np.asarray(data)
    return array[None] if array.ndim == 2 else array


def bscan_on_screen(viewer, data) -> int:
    """The B-scan of ``data`` (labels or a scan, ``[Z, Y, X]`` or one ``[Y, X]``) that napari's slider shows."""
    if viewer is None or np.ndim(data) == 2:
        return 0
    return int(np.clip(viewer.dims.current_step[0], 0, np.shape(data)[0] - 1))


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


def history_bscans(layer) -> set[int]:
    """The B-scans that napari's undo or redo of ``layer`` can change (every item of both histories)."""
    ndim = np.ndim(layer.data)
    items = [*getattr(layer, "_undo_history", ()), *getattr(layer, "_redo_history", ())]
    return set().union(*(touched_bscans(item, ndim) for item in items)) if items else set()


def _stored_state(layer) -> ReviewState | None:
    state = layer.metadata.get(REVIEW_KEY)
    return state if isinstance(state, ReviewState) else None


def review_state(layer) -> ReviewState | None:
    """The layer's review record, or None; when the layer is tracked, its statuses are brought up to date first
    (an undo of a hidden layer is otherwise seen only by the next tick of the timer)."""
    tracker = _TRACKERS.get(id(unwrapped(layer)))
    if tracker is not None and tracker.layer is unwrapped(layer):
        tracker.recheck()
    return _stored_state(layer)


class ReviewTracker:
    """The review session of one napari Labels layer, kept in step with the layer and autosaved.

    ``session.changed`` tells listeners about statuses (the session outlives the states it adopts); ``saved`` is
    emitted after an autosave wrote, or failed.
    """

    def __init__(self, layer, viewer=None, interval_ms: int = AUTOSAVE_INTERVAL_MS) -> None:
        self.layer, self._viewer = layer, viewer
        source = layer.metadata.get(META_KEY, {}).get("source")
        # the bundled sample lives inside the installation: never write there
        is_sample = source is not None and Path(source).resolve().parent == SAMPLE_DIR.resolve()
        self.sidecar: Path | None = sidecar_path(source) if source and not is_sample else None
        self.kept_aside: Path | None = None  # where the first autosave moved a sidecar it did not restore from
        self._claimed_sidecar = False  # whether this tracker has written the sidecar (or found the path free)
        self._kept_aside_untold = False
        self.opened = next(_OPENED)
        self._told_shared_with: ReviewTracker | None = None
        state = self._state_for_layer()
        stored = state is _stored_state(layer)
        self._session = ReviewSession(state)
        self._session.changed.connect(self._publish)  # first: listeners after it find the layer up to date
        self._publish()
        if stored:
            self._session.update(self._labels())  # edits made before tracking began are not in a stored state
        # and undo or redo can change the B-scans those edits touched, as any other
        self._session.watch(history_bscans(layer))
        self.saved = Signal()  # after an autosave wrote, or when one failed
        self.last_saved: float | None = None
        self.save_error: str | None = None
        self._ledger = AutosaveLedger()  # touched only by the autosave thread, or with it idle
        # the spacing the sidecar holds: the layer's, when its labels were restored from that sidecar
        restored = RESTORED_SIDECAR_KEY in layer.metadata.get(META_KEY, {})
        self._saved_spacing = saved_spacing(layer.metadata) if restored else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="octfluid-autosave")
        self._pending: Future | None = None
        self._touched: set[int] = set()
        self._recheck_queued = False
        layer.events.paint.connect(self._on_paint)
        layer.events.data.connect(self._on_data)
        layer.events.metadata.connect(self._on_metadata)
        layer.events.set_data.connect(self._on_redraw)
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # --- the layer's state and the session's -----------------------------------------------------------------
    def _labels(self) -> np.ndarray:
        return as_volume(self.layer.data)

    def _state_for_layer(self) -> ReviewState:
        """The review state in the layer's metadata; a fresh one when there is none or it is for labels of
        another shape, and a copy when it is another tracked layer's (napari's Duplicate Layer copies the metadata
        dict, not the state in it: two layers reviewed through one state would overwrite each other's statuses)."""
        state, labels = _stored_state(self.layer), self._labels()
        if state is None or state.baseline.shape != labels.shape:
            return ReviewState.start(labels, model=self.layer.metadata.get(META_KEY, {}).get("model", ""))
        if any(other is not self and other._session.state is state for other in list(_TRACKERS.values())):
            return state.copy()
        return state

    def _publish(self, *_) -> None:
        """Keep the session's state in the metadata, where the reader, prediction and fine-tuning find it."""
        if self.layer.metadata.get(REVIEW_KEY) is not self._session.state:
            self.layer.metadata[REVIEW_KEY] = self._session.state

    def _sync_state(self) -> None:
        """Adopt a state someone put in the metadata (a new prediction replaces it with the labels)."""
        if self.layer.metadata.get(REVIEW_KEY) is not self._session.state:
            self._session.adopt(self._state_for_layer())

    @property
    def session(self) -> ReviewSession:
        """The layer's review session, with the state in the metadata (put there by anyone, even unannounced)."""
        self._sync_state()
        return self._session

    @property
    def state(self) -> ReviewState:
        return self.session.state

    # --- layer events ------------------------------------------------------------------------------------------
    def _on_paint(self, event) -> None:
        # napari announces a programmatic paint or fill before it writes the data: look once control returns
        first = not self._touched
        self._touched |= touched_bscans(event.value, np.ndim(self.layer.data))
        if first:
            QTimer.singleShot(0, self._update_touched)

    def _update_touched(self) -> None:
        touched, self._touched = sorted(self._touched), set()
        if touched:
            self._sync_state()
            self._session.edited(self._labels(), touched)

    def _on_redraw(self, *_) -> None:
        # an undo or redo redraws the layer; so do many other things: one re-check once control returns
        if not self._recheck_queued:
            self._recheck_queued = True
            QTimer.singleShot(0, self._recheck)

    def _recheck(self) -> None:
        self._recheck_queued = False
        self.recheck()

    def recheck(self) -> None:
        """Re-derive the status of every B-scan an edit ever touched, on screen or not (what an undo may change)."""
        self._sync_state()
        self._session.recheck(self._labels())

    def _on_data(self, *_) -> None:
        self._sync_state()
        self._session.data_replaced(self._labels())

    def _on_metadata(self, *_) -> None:
        self._sync_state()  # metadata replaced without a review state: a fresh one goes back in

    # --- what the widgets use ----------------------------------------------------------------------------------
    def current_bscan(self) -> int:
        return bscan_on_screen(self._viewer, self.layer.data)

    def accept(self, z: int, accepted: bool = True) -> None:
        self._sync_state()
        self._session.accept(z, accepted)

    def tick(self) -> None:
        """Catch undo/redo on any B-scan ever edited (and unannounced edits on the one on screen), then autosave
        in the background if anything changed."""
        self._sync_state()
        self._session.recheck(self._labels(), also=[self.current_bscan()])
        self._collect()
        if self.sidecar is None or (self._pending is not None and not self._pending.done()):
            return
        if not self._owns_sidecar():
            return
        self._pending = self._executor.submit(
            self._save_if_changed, self._session.autosave_snapshot(self._labels()), saved_spacing(self.layer.metadata)
        )

    # --- autosave ----------------------------------------------------------------------------------------------
    def sidecar_owner(self) -> "ReviewTracker":
        """The tracker that autosaves this scan's corrections: of the layers tracked for the same scan (opened twice,
        or restored beside a prediction), the first tracked. Two would write one sidecar in turn, each erasing the
        other's corrections; the others autosave nothing, and one of them takes over when the owner's layer goes."""
        if self.sidecar is None:
            return self
        sharing = [tracker for tracker in _TRACKERS.values() if tracker.sidecar == self.sidecar]
        return min([*sharing, self], key=lambda tracker: tracker.opened)

    def _owns_sidecar(self) -> bool:
        """Whether this tracker autosaves; says once (per owner) why not, when another layer does."""
        owner = self.sidecar_owner()
        if owner is self:
            self._told_shared_with = None
            return True
        if self._told_shared_with is not owner:
            self._told_shared_with = owner
            show_warning(
                f"octfluid: {self.layer.name!r} shows the same scan as {owner.layer.name!r}, whose corrections "
                f"autosave to {self.sidecar.name}; edits in {self.layer.name!r} are not autosaved. Correct one of "
                f"the two, or keep these with File > Save Selected Layers."
            )
        return False

    def _save_if_changed(self, snapshot: AutosaveSnapshot, spacing=None) -> bool:
        """Write the sidecar if the labels, the statuses or the spacing (typed in Quantify) changed since the last
        write; ``spacing`` is read in the main thread, as the layer's metadata may change meanwhile."""
        if not self._ledger.needs_saving(snapshot) and spacing == self._saved_spacing:
            return False
        meta = self.layer.metadata.get(META_KEY, {})
        # computed once by the reader when the scan opened (and copied to predictions); without it the sidecar is
        # written unbound, and restored later with a notice
        scan = ScanIdentity.from_metadata(meta.get(SCAN_IDENTITY_KEY))
        if not self._claimed_sidecar:
            # a sidecar these labels were not restored from (unreadable, another scan's, or not opened) may hold
            # the user's work: it is renamed aside, never overwritten
            self.kept_aside = keep_unrestored_sidecar(self.sidecar, scan, meta.get(RESTORED_SIDECAR_KEY))
            self._kept_aside_untold = self.kept_aside is not None
            self._claimed_sidecar = True
        save_sidecar(self.sidecar, snapshot.labels, snapshot.state, scan, spacing)
        self._ledger.mark_saved(snapshot)
        self._saved_spacing = spacing
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
            show_warning(
                f"octfluid could not autosave your corrections to {self.sidecar}: {error}. "
                f"Save the labels with File > Save Selected Layers to keep them."
            )
        elif error is None:
            self.save_error = None
        self._tell_kept_aside()
        if wrote or error is not None:
            self.saved.emit()

    def _tell_kept_aside(self) -> None:
        """Say once (in the main thread) where the sidecar the first autosave found went."""
        if self._kept_aside_untold and self.kept_aside is not None:
            self._kept_aside_untold = False
            show_warning(
                f"octfluid kept the sidecar it found beside the scan as {self.kept_aside.name} (these "
                f"labels were not restored from it) and autosaves your corrections to {self.sidecar.name}."
            )

    def save_now(self) -> bool:
        """Save at once, in this thread (closing, tests); True if something was written."""
        if self._pending is not None:
            self._pending.exception()  # wait for the one in flight; its error, if any, is reported below
        self._collect()
        self._sync_state()
        wrote = (
            self.sidecar is not None
            and self._owns_sidecar()
            and self._save_if_changed(
                self._session.autosave_snapshot(self._labels()), saved_spacing(self.layer.metadata)
            )
        )
        self._tell_kept_aside()
        if wrote:
            self.saved.emit()
        return wrote

    def close(self) -> None:
        self.timer.stop()
        try:
            self.save_now()
        finally:
            self.layer.events.paint.disconnect(self._on_paint)
            self.layer.events.data.disconnect(self._on_data)
            self.layer.events.metadata.disconnect(self._on_metadata)
            self.layer.events.set_data.disconnect(self._on_redraw)
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
    if tracker is not None and tracker.layer is not layer:  # a layer dropped without a viewer: its id is reused
        tracker.close()
        tracker = None
    if tracker is None:
        tracker = _TRACKERS[id(layer)] = ReviewTracker(layer, viewer)
        if viewer is not None:

            def on_removed(event, tracked=layer) -> None:
                if unwrapped(event.value) is tracked and id(tracked) in _TRACKERS:
                    _TRACKERS[id(tracked)].close()
                    viewer.layers.events.removed.disconnect(on_removed)

            viewer.layers.events.removed.connect(on_removed)
    return tracker
