"""Which B-scans a person has reviewed, and where the model is unsure (numpy only, no Qt, no napari).

A B-scan's status is derived from the data, not from a log of edits: it is *corrected* when its labels differ
from the baseline (the labels as predicted, or as loaded), *accepted* when the user accepted it unchanged, and
*unreviewed* otherwise. Deriving it means that painting, filling, undo, redo and replacing the data all update
the status the same way, whatever route the change took.

:class:`ReviewState` is the record (what the sidecar saves and the layer's metadata carries); :class:`ReviewSession`
is the review as the user works through it: it owns a state, re-derives statuses from the labels of the B-scans
that edits touched, chooses where to go next, and emits a :class:`ReviewChange` on its ``changed`` signal. The
GUI binds a session to a labels layer and a timer (``_qt/review_tracking.py``), as napari-animation keeps its model
free of Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Iterable

import numpy as np

from .labels import annotated_bscans
from .quantify import fluid_pixels_per_bscan

NOT_ANNOTATED = "not annotated"  # shown for an unreviewed B-scan whose every pixel is IGNORE (nobody annotated it)


class Status(IntEnum):
    UNREVIEWED = 0
    CORRECTED = 1
    ACCEPTED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def changed_bscans(labels: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Boolean per B-scan: does ``labels[Z, Y, X]`` differ anywhere from ``baseline`` on that B-scan?"""
    if labels.shape != baseline.shape:
        raise ValueError(f"labels {labels.shape} and baseline {baseline.shape} differ in shape")
    # B-scan by B-scan: twice as fast as one comparison of the volumes, and no temporary the size of the volume
    return np.fromiter(
        (not np.array_equal(bscan, base) for bscan, base in zip(labels, baseline)), bool, count=labels.shape[0]
    )


@dataclass
class ReviewState:
    """Review of one labels volume ``[Z, Y, X]``.

    Attributes
    ----------
    baseline : labels as the model predicted them (or as they were loaded); edits are measured against it
    accepted : per B-scan, the user accepted the labels as they are
    model : which weights produced the baseline ("" when the labels did not come from a model)
    uncertainty : per B-scan review priority, when a model gave one: how unreliable the model's mask is
        (:func:`napari_octfluid.priority.mirrored_disagreement`; the name is the sidecar's)
    """

    baseline: np.ndarray
    accepted: np.ndarray
    model: str = ""
    uncertainty: np.ndarray | None = None
    edited: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.baseline = np.asarray(self.baseline)
        if self.baseline.ndim != 3:
            raise ValueError(f"review needs a labels volume [Z, Y, X], got shape {self.baseline.shape}")
        self.accepted = np.asarray(self.accepted, bool).copy()
        if self.accepted.shape != (self.n_bscans,):
            raise ValueError(f"{len(self.accepted)} accepted flags for {self.n_bscans} B-scans")
        if self.uncertainty is not None and len(self.uncertainty) != self.n_bscans:
            raise ValueError(f"{len(self.uncertainty)} uncertainty values for {self.n_bscans} B-scans")
        self.edited = np.zeros(self.n_bscans, bool)

    @classmethod
    def start(cls, labels: np.ndarray, model: str = "", uncertainty: np.ndarray | None = None) -> "ReviewState":
        """Nothing reviewed yet; ``labels`` (copied) become the baseline."""
        labels = np.asarray(labels)
        return cls(labels.copy(), np.zeros(labels.shape[0], bool), model, uncertainty)

    @property
    def n_bscans(self) -> int:
        return int(self.baseline.shape[0])

    def update(self, labels: np.ndarray, bscans: np.ndarray | list[int] | None = None) -> np.ndarray:
        """Re-derive which B-scans are edited, for ``bscans`` (default: all); returns those whose status changed."""
        before = self.statuses()
        if bscans is None:
            self.edited = changed_bscans(np.asarray(labels), self.baseline)
        else:
            for z in np.unique(np.asarray(bscans, int)):
                self.edited[z] = bool((np.asarray(labels[z]) != self.baseline[z]).any())
        return np.flatnonzero(self.statuses() != before)

    def statuses(self) -> np.ndarray:
        """Status per B-scan (an edit after accepting makes the B-scan corrected)."""
        out = np.full(self.n_bscans, Status.UNREVIEWED, dtype=np.int8)
        out[self.accepted] = Status.ACCEPTED
        out[self.edited] = Status.CORRECTED
        return out

    def status(self, z: int) -> Status:
        return Status(int(self.statuses()[z]))

    def copy(self) -> "ReviewState":
        """A state whose flags can change without touching this one's (the baseline and the uncertainty are
        shared: they are replaced, never written in place)."""
        duplicate = ReviewState(self.baseline, self.accepted, self.model, self.uncertainty)
        duplicate.edited = self.edited.copy()
        return duplicate

    def accept(self, z: int, accepted: bool = True) -> None:
        self.accepted[z] = accepted

    @property
    def reviewed(self) -> np.ndarray:
        """Corrected or accepted: protected from new predictions and used for fine-tuning."""
        return self.statuses() != Status.UNREVIEWED

    def merge_prediction(
        self, current: np.ndarray, predicted: np.ndarray, model: str = "", uncertainty: np.ndarray | None = None
    ) -> np.ndarray:
        """Labels after a new prediction: reviewed B-scans keep the user's labels, the others take the
        prediction (which becomes their new baseline). Returns the merged labels."""
        current, predicted = np.asarray(current), np.asarray(predicted)
        if current.shape != predicted.shape:
            raise ValueError(f"the prediction {predicted.shape} does not match the labels {current.shape}")
        keep = self.reviewed
        merged = predicted.copy()
        merged[keep] = current[keep]
        baseline = self.baseline.copy()  # a new array: an autosave in flight may still read the old one
        baseline[~keep] = predicted[~keep]
        self.baseline = baseline
        self.model = model or self.model
        if uncertainty is not None:
            self.uncertainty = np.asarray(uncertainty, np.float64)
        self.update(merged)
        return merged

    def next_bscan(self, current: int, wanted: np.ndarray, backwards: bool = False) -> int | None:
        """The first B-scan after ``current`` (before it when ``backwards``; wrapping round) where ``wanted`` is
        true."""
        step = -1 if backwards else 1
        order = (current + step * np.arange(1, self.n_bscans + 1)) % self.n_bscans
        hits = [int(z) for z in order if wanted[z]]
        return hits[0] if hits else None

    def priority_order(self) -> np.ndarray:
        """The unreviewed B-scans, the most worth a look first: by decreasing uncertainty of the model; in B-scan
        order among equals and when the model gave no uncertainty."""
        candidates = np.flatnonzero(~self.reviewed)
        if self.uncertainty is None:
            return candidates
        return candidates[np.argsort(-np.asarray(self.uncertainty)[candidates], kind="stable")]

    def most_uncertain_unreviewed(self) -> int | None:
        if self.uncertainty is None:
            return None
        order = self.priority_order()
        return int(order[0]) if len(order) else None


class Signal:
    """Callbacks called in the order they were connected, with what is emitted: a hand-written observer list, so
    that the core needs neither napari's events nor psygnal (a listener in the GUI connects to it as to a Qt
    signal)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback`` on every emit (once, however often it is connected); returns it, to serve as a
        decorator."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``; nothing happens if it was not connected."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):  # a callback may disconnect itself
            callback(*args)

    def __len__(self) -> int:
        return len(self._callbacks)


@dataclass(frozen=True)
class ReviewChange:
    """What a :class:`ReviewSession` emits: the B-scans whose status or fluid changed, or ``everything`` when the
    labels, the baseline (a new prediction) or the whole state were replaced and every row may differ."""

    bscans: tuple[int, ...] = ()
    everything: bool = False


@dataclass(frozen=True)
class ReviewOverview:
    """One row per B-scan, as the review table shows it, and the counts under it."""

    statuses: np.ndarray
    fluid_pixels: np.ndarray
    uncertainty: np.ndarray | None
    annotated: np.ndarray | None = None  # per B-scan: any pixel not IGNORE (None: all annotated)

    def count(self, status: Status) -> int:
        return int((self.statuses == status).sum())

    def status_labels(self) -> list[str]:
        """The status of each B-scan in words; an unreviewed B-scan nobody annotated is "not annotated" (a mask
        read from a file where the grader skipped it), so that nobody takes it for a B-scan without fluid."""
        annotated = np.ones(len(self.statuses), bool) if self.annotated is None else self.annotated
        return [
            NOT_ANNOTATED if status == Status.UNREVIEWED and not has_labels else Status(int(status)).label
            for status, has_labels in zip(self.statuses, annotated)
        ]

    def describe(self) -> str:
        corrected, accepted = self.count(Status.CORRECTED), self.count(Status.ACCEPTED)
        return (
            f"{corrected + accepted} of {len(self.statuses)} reviewed ({corrected} corrected, {accepted} "
            f"accepted); {int((self.fluid_pixels > 0).sum())} hold fluid"
        )


class ReviewSession:
    """The review of one labels volume ``[Z, Y, X]`` while the user works through it.

    It owns a :class:`ReviewState` and keeps its statuses derived from the labels it is handed: ``edited`` after
    an edit (the B-scans it touched), ``recheck`` when an undo or redo may have changed any B-scan ever edited
    (whether on screen or not), ``data_replaced`` when all the labels may differ. It decides accept, where to go
    next and what an autosave writes, and emits one :class:`ReviewChange` on ``changed`` for every call that
    changed something. It holds no labels: the caller (the GUI's adapter, a test) passes them in.
    """

    def __init__(self, state: ReviewState) -> None:
        self.changed = Signal()
        self._state = state
        self._announced = state.statuses()  # what listeners were last told
        # B-scans an edit touched: undo and redo can change them again at any time, without telling anyone
        self._watched = np.zeros(state.n_bscans, bool)
        # fluid pixels and "annotated" per B-scan, counted again only where the labels are checked (an overview of
        # a large volume after each edit would otherwise count every B-scan); None: count them all at next use
        self._fluid: np.ndarray | None = None
        self._annotated: np.ndarray | None = None

    @classmethod
    def start(cls, labels: np.ndarray, model: str = "", uncertainty: np.ndarray | None = None) -> "ReviewSession":
        return cls(ReviewState.start(labels, model, uncertainty))

    # --- the state -----------------------------------------------------------------------------------------
    @property
    def state(self) -> ReviewState:
        return self._state

    @property
    def n_bscans(self) -> int:
        return self._state.n_bscans

    def statuses(self) -> np.ndarray:
        return self._state.statuses()

    def status(self, z: int) -> Status:
        return self._state.status(z)

    @property
    def reviewed(self) -> np.ndarray:
        return self._state.reviewed

    def is_accepted(self, z: int) -> bool:
        return bool(self._state.accepted[z])

    def adopt(self, state: ReviewState) -> None:
        """Review with ``state`` from now on (a new prediction's, a restored one); B-scans edited so far stay
        watched when the volume keeps its number of B-scans, as their undo history does."""
        if state is self._state:
            return
        if state.n_bscans != self.n_bscans:
            self._watched = np.zeros(state.n_bscans, bool)
        self._state = state
        self._fluid = None
        self._announce(everything=True)

    # --- following the labels ------------------------------------------------------------------------------
    def update(self, labels: np.ndarray, bscans: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """Re-derive the statuses of ``bscans`` (default: all) from ``labels``; returns the B-scans whose status
        changed (emitted with those whose fluid changed)."""
        bscans = None if bscans is None else np.fromiter(bscans, int)
        self._state.update(labels, bscans)
        return self._announce(also=self._count(labels, bscans))

    def edited(self, labels: np.ndarray, bscans: Iterable[int]) -> np.ndarray:
        """An edit (brush, fill, a scripted paint) wrote ``bscans``: they are watched from now on."""
        bscans = np.fromiter(bscans, int)
        self._watched[bscans] = True
        return self.update(labels, bscans)

    def recheck(self, labels: np.ndarray, also: Iterable[int] = ()) -> np.ndarray:
        """Re-derive every B-scan an edit ever touched, wherever it is (undo and redo announce nothing), and
        ``also`` those (the one on screen, where an unannounced edit is the user's own)."""
        bscans = np.union1d(np.flatnonzero(self._watched), np.fromiter(also, int))
        return self.update(labels, bscans) if bscans.size else np.zeros(0, int)

    def watch(self, bscans: Iterable[int]) -> None:
        """Re-check ``bscans`` on every :meth:`recheck` from now on: edits made before this session followed the
        labels (napari's undo history outlives them) can be undone at any time too."""
        self._watched[np.fromiter(bscans, int)] = True

    def data_replaced(self, labels: np.ndarray) -> None:
        """All the labels may have changed: re-derive every status (labels of another shape start a fresh review,
        with them as the baseline); always emits ``everything``, as fluid and uncertainty may differ."""
        labels = np.asarray(labels)
        if labels.shape != self._state.baseline.shape:
            self._watched = np.zeros(labels.shape[0], bool)
            self._state = ReviewState.start(labels, model=self._state.model)
        else:
            self._state.update(labels)
        self._count(labels)
        self._announce(everything=True)

    def merge_prediction(
        self, current: np.ndarray, predicted: np.ndarray, model: str = "", uncertainty: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`ReviewState.merge_prediction`, announced: the merged labels to put in the layer."""
        merged = self._state.merge_prediction(current, predicted, model, uncertainty)
        self._count(merged)
        self._announce(everything=True)
        return merged

    def _count(self, labels: np.ndarray, bscans: np.ndarray | None = None) -> np.ndarray:
        """Count fluid and annotation again on ``bscans`` (all of them when None or when nothing is counted yet);
        returns the B-scans whose fluid or annotation changed."""
        labels = np.asarray(labels)
        before = None if self._fluid is None else (self._fluid.copy(), self._annotated.copy())
        if bscans is None or self._fluid is None or len(self._fluid) != len(labels):
            bscans = np.arange(len(labels))
            self._fluid = np.zeros(len(labels), np.int64)
            self._annotated = np.zeros(len(labels), bool)
        if bscans.size:
            some = labels[bscans]
            self._fluid[bscans] = fluid_pixels_per_bscan(some)
            annotated = np.zeros(len(bscans), bool)
            annotated[annotated_bscans(some)] = True
            self._annotated[bscans] = annotated
        if before is None or len(before[0]) != len(self._fluid):
            return np.zeros(0, int)
        return np.flatnonzero((before[0] != self._fluid) | (before[1] != self._annotated))

    def _announce(self, everything: bool = False, also: np.ndarray | None = None) -> np.ndarray:
        statuses = self._state.statuses()
        if statuses.shape != self._announced.shape:
            changed, everything = np.arange(len(statuses)), True
        else:
            changed = np.flatnonzero(statuses != self._announced)
        self._announced = statuses
        told = changed if also is None else np.union1d(changed, also)
        if everything or told.size:
            self.changed.emit(ReviewChange(tuple(int(z) for z in told), everything))
        return changed

    def set_priority(self, priority: np.ndarray) -> None:
        """Give the B-scans their review priority once it is known (it arrives after the mask: see
        ``priority.mirrored_disagreement``); the queue and the table follow it."""
        priority = np.asarray(priority, np.float64)
        if len(priority) != self.n_bscans:
            raise ValueError(f"{len(priority)} priorities for {self.n_bscans} B-scans")
        self._state.uncertainty = priority
        self._announce(everything=True)

    # --- decisions -----------------------------------------------------------------------------------------
    def accept(self, z: int, accepted: bool = True) -> None:
        """Accept B-scan ``z`` as it is (or take that back); an edit after accepting makes it corrected."""
        self._state.accept(z, accepted)
        self._announce()

    def toggle_accept(self, z: int) -> bool:
        """Accept ``z`` or take the acceptance back; returns whether it is accepted now."""
        self.accept(z, not self.is_accepted(z))
        return self.is_accepted(z)

    def next_unreviewed(self, current: int) -> int | None:
        """The first unreviewed B-scan after ``current``, wrapping round."""
        return self._state.next_bscan(current, ~self.reviewed)

    def previous_unreviewed(self, current: int) -> int | None:
        """The first unreviewed B-scan before ``current``, wrapping round."""
        return self._state.next_bscan(current, ~self.reviewed, backwards=True)

    def next_with_fluid(self, current: int, labels: np.ndarray) -> int | None:
        """The first B-scan after ``current`` whose labels hold fluid, wrapping round."""
        return self._state.next_bscan(current, fluid_pixels_per_bscan(labels) > 0)

    def priority_order(self) -> np.ndarray:
        return self._state.priority_order()

    def most_uncertain_unreviewed(self) -> int | None:
        return self._state.most_uncertain_unreviewed()

    def next_by_priority(self, current: int) -> int | None:
        """The unreviewed B-scan that follows ``current`` in :meth:`priority_order` (wrapping round; the first
        when ``current`` is reviewed), so that pressing "next" again walks through them all."""
        order = [int(z) for z in self.priority_order()]
        if not order:
            return None
        if current not in order:
            return order[0]
        following = order[(order.index(current) + 1) % len(order)]
        return None if following == current else following

    def overview(self, labels: np.ndarray) -> ReviewOverview:
        """The table's rows: statuses, and fluid as counted where the labels were last checked (every B-scan of
        ``labels`` the first time)."""
        if self._fluid is None or len(self._fluid) != self.n_bscans:
            self._count(labels)
        return ReviewOverview(self.statuses(), self._fluid.copy(), self._state.uncertainty, self._annotated.copy())

    def autosave_snapshot(self, labels: np.ndarray) -> "AutosaveSnapshot":
        """What an autosave would write now: copies, so that a background thread can save them while the user
        goes on editing."""
        return AutosaveSnapshot(np.array(labels, copy=True), self._state.copy())


@dataclass(frozen=True)
class AutosaveSnapshot:
    labels: np.ndarray
    state: ReviewState


class AutosaveLedger:
    """What the sidecar holds, so that an autosave writes only when the labels, the accepted flags or the model
    changed since the last write (used by one thread at a time)."""

    def __init__(self) -> None:
        self._saved: AutosaveSnapshot | None = None

    def needs_saving(self, snapshot: AutosaveSnapshot) -> bool:
        saved = self._saved
        return (
            saved is None
            or saved.state.accepted.tolist() != snapshot.state.accepted.tolist()
            or saved.state.model != snapshot.state.model
            or not np.array_equal(saved.labels, snapshot.labels)
        )

    def mark_saved(self, snapshot: AutosaveSnapshot) -> None:
        self._saved = snapshot
