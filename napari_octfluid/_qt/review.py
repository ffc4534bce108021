"""Review dock widget: every B-scan with its status (unreviewed, corrected, accepted), its fluid and the model's
uncertainty; jumps to the next unreviewed, the next with fluid, the most uncertain B-scan or the next by priority;
Accept; the probability overlay; and the autosave state of the corrections. It only shows and forwards: the review
session (``napari_octfluid.review``) decides, its tracker (``review_tracking``) binds it to the layer."""

from __future__ import annotations

import time

import numpy as np
from magicgui.widgets import CheckBox, Container, Label, PushButton, Table

from .._layers import META_KEY, REVIEW_KEY
from ..review import Status
from ._layer_pick import labels_picker
from .review_tracking import ReviewTracker, as_volume, tracker_for


class ReviewWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self.labels_layer = labels_picker()
        self.table = Table(value={"B-scan": [], "status": [], "fluid pixels": [], "uncertainty": []})
        self.accept_button = PushButton(text="Accept this B-scan")
        self.next_unreviewed = PushButton(text="Next unreviewed")
        self.next_with_fluid = PushButton(text="Next with fluid")
        self.most_uncertain = PushButton(text="Most uncertain unreviewed")
        self.show_probability = CheckBox(text="Show the fluid probability overlay", value=False)
        self.status = Label(value="")
        self.saved = Label(value="")
        buttons = Container(layout="horizontal", widgets=[self.accept_button, self.next_unreviewed], labels=False)
        jumps = Container(layout="horizontal", widgets=[self.next_with_fluid, self.most_uncertain], labels=False)
        self.extend([self.labels_layer, self.table, buttons, jumps, self.show_probability, self.status, self.saved])
        self.labels_layer.changed.connect(self._track)
        self.accept_button.changed.connect(self.toggle_accept)
        self.next_unreviewed.changed.connect(lambda *_: self.go_to("unreviewed"))
        self.next_with_fluid.changed.connect(lambda *_: self.go_to("fluid"))
        self.most_uncertain.changed.connect(lambda *_: self.go_to("uncertain"))
        self.show_probability.changed.connect(self._toggle_probability)
        self.table.native.cellDoubleClicked.connect(lambda row, _column: self._go(row))
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        napari_viewer.dims.events.current_step.connect(self._update_accept_text)
        self.tracker: ReviewTracker | None = None
        self._track()

    # --- which layer is reviewed
    def _on_layer_inserted(self, event) -> None:
        """Restored corrections (the reader found a sidecar) are tracked and autosaved from the start."""
        if REVIEW_KEY in getattr(event.value, "metadata", {}):
            tracker_for(event.value, self._viewer)

    def _track(self, *_) -> None:
        if self.tracker is not None:
            self.tracker.session.changed.disconnect(self._refresh)
            self.tracker.saved.disconnect(self._update_saved)
        layer = self.labels_layer.value
        try:
            self.tracker = None if layer is None else tracker_for(layer, self._viewer)
        except ValueError as error:  # labels that are neither one B-scan nor a volume of them
            self.tracker = None
            self._refresh()
            self.status.value = f"octfluid cannot review {layer.name!r}: {error}"
            return
        if self.tracker is not None:
            self.tracker.session.changed.connect(self._refresh)
            self.tracker.saved.connect(self._update_saved)
        self._refresh()

    # --- display
    def _refresh(self, *_) -> None:
        if self.tracker is None:
            self.table.value = {"B-scan": [], "status": [], "fluid pixels": [], "uncertainty": []}
            self.status.value = "Choose the fluid labels to review."
            return
        overview = self.tracker.session.overview(as_volume(self.tracker.layer.data))
        uncertainty = overview.uncertainty
        self.table.value = {
            "B-scan": list(range(len(overview.statuses))),
            "status": [Status(int(s)).label for s in overview.statuses],
            "fluid pixels": [int(p) for p in overview.fluid_pixels],
            "uncertainty": (
                [f"{u:.4f}" for u in uncertainty] if uncertainty is not None else [""] * len(overview.statuses)
            ),
        }
        self.status.value = overview.describe()
        self._update_accept_text()
        self._update_saved()

    def _update_saved(self) -> None:
        tracker = self.tracker
        if tracker is None or tracker.sidecar is None:
            self.saved.value = "Not autosaved: these labels have no scan file to sit beside."
        elif tracker.save_error:
            self.saved.value = f"Autosave FAILED: {tracker.save_error}"
        elif tracker.last_saved is None:
            self.saved.value = f"Autosaves to {tracker.sidecar.name}"
        else:
            self.saved.value = (
                f"Autosaved {time.strftime('%H:%M:%S', time.localtime(tracker.last_saved))} to {tracker.sidecar.name}"
            )

    def _update_accept_text(self, *_) -> None:
        if self.tracker is not None:
            accepted = self.tracker.session.is_accepted(self.tracker.current_bscan())
            self.accept_button.text = "Un-accept this B-scan" if accepted else "Accept this B-scan"

    # --- actions
    def toggle_accept(self, *_) -> None:
        if self.tracker is None:
            return
        self.tracker.session.toggle_accept(self.tracker.current_bscan())

    def _go(self, z: int) -> None:
        if self.tracker is None:
            return
        if np.ndim(self.tracker.layer.data) == 3:
            self._viewer.dims.set_current_step(0, z)
        self._update_accept_text()

    def go_to(self, what: str) -> int | None:
        """Move to the next unreviewed B-scan ("unreviewed"), the next with fluid ("fluid"), the most uncertain
        unreviewed one ("uncertain") or the next unreviewed one in order of priority ("priority")."""
        if self.tracker is None:
            self.status.value = "Choose the fluid labels to review."
            return None
        session, current = self.tracker.session, self.tracker.current_bscan()
        no_uncertainty = session.state.uncertainty is None
        if what == "uncertain":
            target = session.most_uncertain_unreviewed()
            empty = "No uncertainty: predict with octfluid first." if no_uncertainty else "Every B-scan is reviewed."
        elif what == "priority":
            target = session.next_by_priority(current)
            empty = "Every B-scan is reviewed."
        elif what == "fluid":
            target = session.next_with_fluid(current, as_volume(self.tracker.layer.data))
            empty = "No B-scan with fluid."
        else:
            target = session.next_unreviewed(current)
            empty = "Every B-scan is reviewed."
        if target is None:
            self.status.value = empty
            return None
        self._go(target)
        return target

    def go_to_next_with_fluid(self, *_) -> int | None:
        return self.go_to("fluid")

    def _probability_layer(self):
        if self.tracker is None:
            return None
        name = self.tracker.layer.metadata.get(META_KEY, {}).get("probability_layer")
        return self._viewer.layers[name] if name and name in self._viewer.layers else None

    def _toggle_probability(self, show: bool) -> None:
        layer = self._probability_layer()
        if layer is None:
            if show:
                self.status.value = "No probability layer: predict with octfluid first."
            return
        layer.visible = bool(show)
