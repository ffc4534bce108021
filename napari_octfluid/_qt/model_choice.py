"""The weights Predict offers: the shipped ones, every model kept by name (``model_library``), or a checkpoint
file; and the kept model made for the scan's device, chosen when the scan is (issue 19: a model adapted to one
device is used there, and only there). No computing: the library lists descriptions, never weights."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import ComboBox

from .._layers import recorded_device
from ..model_library import KeptModel, kept_models, model_for_device
from .fit_width import narrow_combo_box

DEFAULT_WEIGHTS_CHOICE = "shipped default"
CHECKPOINT_CHOICE = "checkpoint file..."


def kept_choice(model: KeptModel) -> tuple[str, str]:
    """A kept model as a (text, value) choice: its name and device shown, its file the value."""
    return (f"{model.name} ({model.device})" if model.device else model.name), str(model.path)


def weights_choices(models: list[KeptModel]) -> list[tuple[str, str]]:
    return [
        (DEFAULT_WEIGHTS_CHOICE, DEFAULT_WEIGHTS_CHOICE),
        *(kept_choice(model) for model in models),
        (CHECKPOINT_CHOICE, CHECKPOINT_CHOICE),
    ]


def weights_picker() -> ComboBox:
    """The Weights choice, listing the model folder each time napari resets its widgets' choices (a layer added,
    the panel shown), so a model kept in Fine-tune appears without reopening the panel."""
    # narrow: a kept model's name and device must not widen the dock past a laptop screen
    return narrow_combo_box(ComboBox(label="Weights", choices=lambda _widget: weights_choices(kept_models())))


def choose_for_scan(weights: ComboBox, metadata: dict) -> KeptModel | None:
    """Choose in ``weights`` the kept model made for the device the scan's ``metadata`` records, if there is one
    (the shipped weights otherwise, unless the user chose a checkpoint file); returns the model chosen."""
    weights.reset_choices()
    match = model_for_device(recorded_device(metadata), kept_models())
    if match is not None:
        weights.value = str(match.path)
    elif weights.value != CHECKPOINT_CHOICE:
        weights.value = DEFAULT_WEIGHTS_CHOICE
    return match


def chosen_kept_path(value: str) -> Path | None:
    """The kept model's file for a choice's ``value``, None for the shipped weights or a checkpoint file."""
    return None if value in (DEFAULT_WEIGHTS_CHOICE, CHECKPOINT_CHOICE) else Path(value)
