"""The click tools of ``napari_octfluid.correct`` bound to a fluid Labels layer: modifier-clicks, keys and a small
dock whose tooltips name the keys. Every change is written with ``Labels.data_setitem`` in one call, which napari
records as one history item, so one Ctrl+Z restores the labels exactly.

Mouse: Alt-click removes the lesion under the cursor in this B-scan, Ctrl+Alt-click removes it through the volume,
Shift+Alt-click adds the region the fluid probability supports around the click. The clicks work in the pan/zoom,
pick, paint and erase modes (napari's brush is frozen while Alt is held, so it paints nothing); in fill and polygon
mode the click is napari's and the tools only say so.
"""

from __future__ import annotations

import weakref

import numpy as np
from magicgui.widgets import Container, FloatSpinBox, Label, PushButton, SpinBox
from napari.utils.notifications import show_info

from .. import correct
from .._layers import META_KEY
from .review_tracking import as_volume, unwrapped

THRESHOLD_STEP = 0.05
SHORTCUTS = {  # action: (key, button, what it does); the keys are free in napari's Labels keymap
    "remove_islands": ("Shift-I", "Remove islands", "Remove fluid islands under the minimum size in this B-scan"),
    "remove_islands_volume": (
        "Control-Shift-I",
        "Remove islands (volume)",
        "Remove fluid islands under the minimum size in every B-scan",
    ),
    "fill_holes": ("Shift-H", "Fill holes", "Fill the holes in the fluid of this B-scan"),
    "copy_previous": ("Shift-B", "Copy B-scan before", "Start this B-scan from the mask of the B-scan before it"),
    "copy_next": ("Shift-N", "Copy B-scan after", "Start this B-scan from the mask of the B-scan after it"),
    "widen": ("Shift-W", "", "Widen the added lesion: lower the probability threshold"),
    "narrow": ("Shift-T", "", "Narrow the added lesion: raise the probability threshold"),
}
CLICKS = (
    "Alt-click: remove the lesion in this B-scan; Ctrl+Alt-click: through the volume; "
    "Shift+Alt-click: add the lesion the fluid probability supports"
)
CLICK_MODES = ("pan_zoom", "pick", "paint", "erase")

_installed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def help_text() -> str:
    """The tools in a few words, for the Review tab (they bind to its labels with no dock of their own, which a
    laptop screen has no room for: nothing on screen named them); each button's tooltip has the rest."""
    key = {action: shortcut.replace("-", "+") for action, (shortcut, _, _) in SHORTCUTS.items()}
    return (
        "Click tools: Alt-click removes a lesion (Ctrl+Alt: through the volume), Shift+Alt-click adds one; "
        f"{key['widen']} / {key['narrow']} widen / narrow it; {key['remove_islands']} islands, {key['fill_holes']} "
        f"holes, {key['copy_previous']} / {key['copy_next']} copy the B-scan before / after."
    )


def install_click_tools(viewer, labels_layer, dock: bool = True) -> ClickTools:
    """Bind the click tools to ``labels_layer`` (once per layer) and, with ``dock``, show their dock."""
    labels_layer = unwrapped(labels_layer)  # a widget's napari proxy is a new object at every access
    tools = _installed.get(labels_layer)
    if tools is None:
        tools = _installed[labels_layer] = ClickTools(viewer, labels_layer)
        if dock and getattr(viewer, "window", None) is not None:
            viewer.window.add_dock_widget(ClickToolsWidget(tools), name="Click tools", area="right")
    return tools


class ClickTools:
    """The tools' state (threshold, minimum island size) and their binding to one Labels layer."""

    def __init__(self, viewer, layer) -> None:
        self.viewer, self.layer = viewer, layer
        # adding starts at the threshold the model decided with (0.5 would take in the grey halo that the calibrated
        # model leaves out: on the sample it tripled a cyst); the user widens or narrows from there
        decided = (layer.metadata.get("octfluid") or {}).get("decision_threshold")
        self.threshold = float(decided) if decided is not None else correct.DEFAULT_THRESHOLD
        self.max_share = correct.DEFAULT_MAX_SHARE
        self.min_island = correct.DEFAULT_MIN_ISLAND
        self._last_add = None  # (point, B-scan labels before the add, after it): what widen/narrow redo
        layer.mouse_drag_callbacks.insert(0, self._on_mouse_press)  # first, to freeze the brush before it paints
        for action, (key, _, _) in SHORTCUTS.items():
            layer.bind_key(key, self._key_handler(getattr(self, action)), overwrite=True)

    @staticmethod
    def _key_handler(action):
        def handler(_layer):
            action()

        return handler

    # --- the layer as a volume -------------------------------------------------------------------------------
    def _volume(self) -> np.ndarray:
        return as_volume(self.layer.data)

    def _current_bscan(self) -> int:
        if np.ndim(self.layer.data) == 2:
            return 0
        return int(round(float(self.layer.world_to_data(self.viewer.dims.point)[0])))

    def _probability(self) -> np.ndarray | None:
        name = self.layer.metadata.get(META_KEY, {}).get("probability_layer", f"{self.layer.name} probability")
        if name not in self.viewer.layers:
            return None
        return as_volume(self.viewer.layers[name].data)

    def _tell(self, message: str, loud: bool = False) -> None:
        self.viewer.status = message
        if loud:
            show_info(f"octfluid: {message}")

    def apply(self, correction: correct.Correction) -> bool:
        """Write ``correction`` into the layer as one undoable step; say why when it changes nothing."""
        if not correction.changed:
            self._tell(correction.message, loud=True)
            return False
        bscans = np.asarray(correction.bscans)
        differs = correction.labels != self._volume()[bscans]
        which, rows, columns = np.nonzero(differs)
        indices = (rows, columns) if np.ndim(self.layer.data) == 2 else (bscans[which], rows, columns)
        self.layer.data_setitem(indices, correction.labels[differs])
        self._tell(correction.message)
        return True

    # --- mouse ----------------------------------------------------------------------------------------------
    def _on_mouse_press(self, layer, event) -> None:
        modifiers = {str(getattr(key, "name", key)) for key in event.modifiers}
        if event.type != "mouse_press" or event.button != 1 or "Alt" not in modifiers:
            return
        if layer.mode not in CLICK_MODES:
            self._tell(f"Click tools work in pan/zoom, pick, paint or erase mode, not {layer.mode}.", loud=True)
            return
        if layer.mode in ("paint", "erase"):
            layer.cursor = "circle_frozen"  # napari's brush skips clicks while frozen (as when Alt resizes it)
        if len(event.dims_displayed) != 2:
            self._tell("Click tools work on a B-scan in 2D view.", loud=True)
            return
        point = np.round(layer.world_to_data(event.position)).astype(int)
        point = (0, *point) if len(point) == 2 else tuple(point)
        if not all(0 <= c < n for c, n in zip(point, self._volume().shape)):
            return
        if "Shift" in modifiers:
            self.add_at(point)
        else:
            self.remove_at(point, through_volume=bool(modifiers & {"Control", "Meta"}))

    def remove_at(self, point, through_volume: bool = False) -> bool:
        return self.apply(correct.remove_lesion(self._volume(), point, through_volume))

    def add_at(self, point) -> bool:
        probability = self._probability()
        if probability is None or probability.shape != self._volume().shape:
            self._tell("Adding a lesion needs the fluid probability: run Predict on this scan first.", loud=True)
            return False
        z = point[0]
        before = self._volume()[z].copy()
        result = correct.add_lesion(self._volume(), probability, point, self.threshold, self.max_share)
        applied = self.apply(result)
        self._last_add = (tuple(point), before, result.labels[0].copy()) if applied else None
        return applied

    # --- keys -----------------------------------------------------------------------------------------------
    def remove_islands(self) -> bool:
        return self.apply(correct.remove_islands(self._volume(), self.min_island, [self._current_bscan()]))

    def remove_islands_volume(self) -> bool:
        return self.apply(correct.remove_islands(self._volume(), self.min_island))

    def fill_holes(self) -> bool:
        return self.apply(correct.fill_holes(self._volume(), [self._current_bscan()]))

    def copy_previous(self) -> bool:
        z = self._current_bscan()
        return self.apply(correct.copy_neighbour(self._volume(), z, z - 1))

    def copy_next(self) -> bool:
        z = self._current_bscan()
        return self.apply(correct.copy_neighbour(self._volume(), z, z + 1))

    def widen(self) -> bool:
        return self.set_threshold(self.threshold - THRESHOLD_STEP)

    def narrow(self) -> bool:
        return self.set_threshold(self.threshold + THRESHOLD_STEP)

    def set_threshold(self, threshold: float) -> bool:
        """Set the threshold of the next addition; if the last addition is still as it was, redo it at the new
        threshold (one more undoable step). True if the labels changed."""
        self.threshold = float(np.clip(round(threshold, 4), THRESHOLD_STEP, 1.0))
        self._tell(f"Fluid probability threshold for adding: {self.threshold:.2f}")
        if self._last_add is None:
            return False
        point, before, after = self._last_add
        z = point[0]
        if not np.array_equal(self._volume()[z], after):  # edited or undone since: leave it to the user
            self._last_add = None
            return False
        probability = self._probability()
        if probability is None:
            return False
        redo = correct.add_lesion(before[None], probability[z][None], (0, *point[1:]), self.threshold, self.max_share)
        if redo.flooded:  # keep the region there is
            self._tell(redo.message, loud=True)
            return False
        new = redo.labels[0] if redo.changed else before
        self._tell(redo.message)
        changed = self.apply(correct.Correction((z,), new[None], redo.message))
        self._last_add = (point, before, new.copy())
        return changed


class ClickToolsWidget(Container):
    """Buttons (their tooltips name the keys) and the two numbers the tools use; no computing here."""

    def __init__(self, tools: ClickTools) -> None:
        self.tools = tools
        self.clicks = Label(value="Alt-click / Ctrl+Alt-click / Shift+Alt-click")
        self.clicks.tooltip = CLICKS
        self.threshold = FloatSpinBox(label="Add threshold", value=tools.threshold, min=0.05, max=1.0, step=0.05)
        self.threshold.tooltip = f"{SHORTCUTS['widen'][0]} widens, {SHORTCUTS['narrow'][0]} narrows"
        self.min_island = SpinBox(label="Min island (px)", value=tools.min_island, min=1, max=100000)
        self.buttons = {}
        for action, (key, text, description) in SHORTCUTS.items():
            if text:
                button = PushButton(text=text)
                button.tooltip = f"{description} ({key})"
                button.changed.connect(self._runner(getattr(tools, action)))
                self.buttons[action] = button
        super().__init__(widgets=[self.clicks, self.threshold, self.min_island, *self.buttons.values()])
        self.threshold.changed.connect(tools.set_threshold)
        self.min_island.changed.connect(lambda value: setattr(tools, "min_island", int(value)))

    @staticmethod
    def _runner(action):
        def run(*_):
            action()

        return run
