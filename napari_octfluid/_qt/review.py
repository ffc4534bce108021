"""Review dock widget: every B-scan with its status (unreviewed, corrected, accepted, not annotated; rows coloured
by it), its fluid and the model's doubt about its mask, the row of the B-scan on screen selected; jumps to the next or
previous unreviewed, the next by priority and the next with fluid; Accept; keyboard shortcuts for these on the
viewer; the probability overlay; the difference from a reference mask; and the autosave state of the corrections.
It only shows and forwards: the review session (``napari_octfluid.review``) decides, its tracker
(``review_tracking``) binds it to the layer."""

from __future__ import annotations

import time

import numpy as np
from magicgui.widgets import CheckBox, Container, Label, PushButton
from qtpy.QtCore import QTimer

from .._layers import META_KEY, REVIEW_KEY
from ._layer_pick import labels_picker
from .click_tools import help_text, install_click_tools
from .difference import DifferenceOverlay
from .fit_width import narrow_combo_box, wrap_message
from .review_table import BscanTable
from .review_tracking import ReviewTracker, as_volume, tracker_for, unwrapped

# action: (key, button text, what it does). Bound on the viewer, so they work whichever layer is selected; none is
# in napari's viewer or Labels keymaps (napari 0.9), nor among the click tools' keys (Shift-I/H/B/N/W/T). The
# active layer's keymap comes first: with a Points or Shapes layer selected, A selects its points instead.
SHORTCUTS = {
    "accept": ("A", "Accept this B-scan", "Accept this B-scan as it is, or take the acceptance back"),
    "unreviewed": ("U", "Next unreviewed", "Go to the next B-scan nobody corrected or accepted"),
    "previous_unreviewed": ("Shift-U", "Previous", "Go back to the previous unreviewed B-scan"),
    "priority": (
        "N",
        "Next by priority",
        "Go to the next unreviewed B-scan whose mask the model is least sure of (doubt: how far its mask differs "
        "from the model's mask of the mirrored B-scan), the most doubtful first",
    ),
}


def key_text(key: str) -> str:
    return key.replace("-", "+")


class ReviewWidget(Container):
    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=False)  # no column of labels: the table and the buttons use the dock's whole width
        self._viewer = napari_viewer
        self.labels_layer = labels_picker()
        narrow_combo_box(self.labels_layer)
        self.table = BscanTable()
        self.buttons = {}
        for action, (key, text, description) in SHORTCUTS.items():
            button = self.buttons[action] = PushButton(text=f"{text} ({key_text(key)})")
            button.tooltip = f"{description}. Shortcut: {key_text(key)} (with the viewer focused)."
        self.accept_button = self.buttons["accept"]
        self.next_unreviewed = self.buttons["unreviewed"]
        self.next_by_priority = self.buttons["priority"]
        self.next_with_fluid = PushButton(text="Next with fluid")
        self.next_with_fluid.tooltip = "Go to the next B-scan whose labels hold fluid."
        self.show_probability = CheckBox(text="Show the fluid probability overlay", value=False)
        self.difference = DifferenceOverlay(napari_viewer)
        self.status = Label(value="")
        self.saved = Label(value="")
        self.click_help = Label(value=help_text())
        wrap_message(self.status)
        wrap_message(self.saved)
        wrap_message(self.click_help)
        rows = [
            [self.accept_button, self.next_with_fluid],
            [self.next_unreviewed, self.buttons["previous_unreviewed"]],
            [self.next_by_priority],
        ]
        self.extend(
            [Container(widgets=[self.labels_layer]), self.table]
            + [Container(layout="horizontal", widgets=row, labels=False) for row in rows]
            + [self.click_help, self.show_probability, self.difference, self.status, self.saved]
        )
        self.native.layout().setStretchFactor(self.table.native, 1)  # the table takes the room left over
        # napari asks for fresh layer lists inside its insertion of a layer (0.1-0.2 s of its own on one event-loop
        # turn): a pick that changes then is followed at the next turn, by this timer (a child: gone with the dock)
        self._napari_resetting = False
        self._track_soon = QTimer(self.native)
        self._track_soon.setSingleShot(True)
        self._track_soon.setInterval(0)
        self._track_soon.timeout.connect(self._track)
        self.labels_layer.changed.connect(self._on_pick)
        self.accept_button.changed.connect(self.toggle_accept)
        self.next_unreviewed.changed.connect(lambda *_: self.go_to("unreviewed"))
        self.buttons["previous_unreviewed"].changed.connect(lambda *_: self.go_to("previous unreviewed"))
        self.next_by_priority.changed.connect(lambda *_: self.go_to("priority"))
        self.next_with_fluid.changed.connect(lambda *_: self.go_to("fluid"))
        self.show_probability.changed.connect(self._toggle_probability)
        self.table.bscan_chosen.connect(self._go)
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        napari_viewer.layers.selection.events.active.connect(self._on_layer_selected)
        napari_viewer.dims.events.current_step.connect(self._on_step)
        self._bind_keys()
        self._tracker: ReviewTracker | None = None
        self._track()

    # --- keyboard shortcuts
    def _bind_keys(self) -> None:
        actions = {
            "accept": self.toggle_accept,
            "unreviewed": lambda: self.go_to("unreviewed"),
            "previous_unreviewed": lambda: self.go_to("previous unreviewed"),
            "priority": lambda: self.go_to("priority"),
        }
        handlers = {key: _key_handler(actions[action]) for action, (key, _, _) in SHORTCUTS.items()}
        for key, handler in handlers.items():
            self._viewer.bind_key(key, handler, overwrite=True)
        self.native.destroyed.connect(lambda *_, viewer=self._viewer: _unbind_keys(viewer, handlers))

    # --- which layer is reviewed
    def reset_choices(self, *event) -> None:
        """Bring the layer lists up to date. napari calls this with its event when layers are added or removed,
        inside its own insertion of the layer: the review of a layer picked then follows at the next event-loop
        turn (:meth:`_on_pick`); called without one (the panel building the tab, a script), all happens now."""
        self._napari_resetting = bool(event)
        try:
            super().reset_choices()
        finally:
            self._napari_resetting = False

    @property
    def tracker(self) -> ReviewTracker | None:
        """The tracker of the labels under review; a pick that napari's last change of the layer list made and that
        is still to be followed is followed first (a script reads the widget right after adding a layer)."""
        if self._track_soon.isActive():
            self._track_soon.stop()
            self._track()
        return self._tracker

    def _on_pick(self, *_) -> None:
        """The labels to review changed: at once when the user (or a script) picked them, at the next event-loop
        turn when napari's new layer list changed the pick."""
        if self._napari_resetting:
            self._track_soon.start()
        else:
            self._track_soon.stop()
            self._track()

    def _on_layer_inserted(self, event) -> None:
        """Restored corrections (the reader found a sidecar) are tracked and autosaved from the start, and take the
        click tools (removal works at once; adding needs the probability a prediction brings)."""
        if REVIEW_KEY in getattr(event.value, "metadata", {}):
            tracker_for(event.value, self._viewer)
            install_click_tools(self._viewer, event.value, dock=False)

    def _on_layer_selected(self, event) -> None:
        """Another scan's fluid labels were selected (by the user, or by Predict showing a new mask): they are
        reviewed from now on. Left on the first scan, the keys would accept B-scans of a scan no longer looked at."""
        layer = unwrapped(event.value)
        if layer is None or REVIEW_KEY not in getattr(layer, "metadata", {}):
            return
        if unwrapped(self.labels_layer.value) is layer:
            return
        if any(unwrapped(choice) is layer for choice in self.labels_layer.choices):
            self.labels_layer.value = layer

    def _track(self, *_) -> None:
        self.difference.set_mask(self.labels_layer.value)
        if self.tracker is not None:
            self.tracker.session.changed.disconnect(self._refresh)
            self.tracker.saved.disconnect(self._update_saved)
        layer = self.labels_layer.value
        try:
            self._tracker = None if layer is None else tracker_for(layer, self._viewer)
        except ValueError as error:  # labels that are neither one B-scan nor a volume of them
            self._tracker = None
            self._refresh()
            self.status.value = f"octfluid cannot review {layer.name!r}: {error}"
            return
        if self.tracker is not None:
            self.tracker.session.changed.connect(self._refresh)
            self.tracker.saved.connect(self._update_saved)
            install_click_tools(self._viewer, layer, dock=False)  # labels under review are labels being corrected
        self._refresh()

    # --- display
    def _refresh(self, *_) -> None:
        if self.tracker is None:
            self.table.show_overview(None)
            self.status.value = "Choose the fluid labels to review."
            return
        overview = self.tracker.session.overview(as_volume(self.tracker.layer.data))
        self.table.show_overview(overview, self.tracker.current_bscan())
        self.status.value = overview.describe()
        self._update_accept_text()
        self._update_saved()

    def _on_step(self, *_) -> None:
        """The slider moved: the table follows, and the Accept button names what it will do here."""
        if self.tracker is not None:
            self.table.follow(self.tracker.current_bscan())
        self._update_accept_text()

    def _update_saved(self) -> None:
        tracker = self.tracker
        if tracker is None or tracker.sidecar is None:
            self.saved.value = "Not autosaved: these labels have no scan file to sit beside."
        elif tracker.sidecar_owner() is not tracker:
            owner = tracker.sidecar_owner().layer.name
            self.saved.value = f"Not autosaved: the same scan is open as {owner!r}, which autosaves."
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
            key = key_text(SHORTCUTS["accept"][0])
            self.accept_button.text = f"Un-accept this B-scan ({key})" if accepted else f"Accept this B-scan ({key})"

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
        """Move to the next unreviewed B-scan ("unreviewed"), the previous one ("previous unreviewed"), the next
        with fluid ("fluid"), the most uncertain unreviewed one ("uncertain") or the next unreviewed one in order of
        priority ("priority")."""
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
        elif what == "previous unreviewed":
            target = session.previous_unreviewed(current)
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


def _key_handler(action):
    def handler(_viewer) -> None:
        action()

    return handler


def _unbind_keys(viewer, handlers: dict) -> None:
    """The widget is gone: its keys do nothing from now on, unless another Review widget bound them since."""
    for key, handler in handlers.items():
        try:
            unbound = viewer.bind_key(key, None)
            if unbound is not None and unbound is not handler:
                viewer.bind_key(key, unbound)
        except Exception:  # noqa: BLE001 - the viewer may be closing too
            pass
