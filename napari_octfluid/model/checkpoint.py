"""Checkpoints: plain dictionaries of tensors and settings, loaded with ``weights_only=True`` so that
opening one never runs code, and written atomically so a crash never leaves half a file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path
from ..axial import CHECKPOINT_KEY as AXIAL_SPACING_KEY
from ..axial import FITTED_CHECKPOINT_KEY, checked_axial_spacing, checked_fitted_axial_spacing, model_axial_spacing
from ..memory import MemoryBudgetError, check_allocation, format_bytes
from ..min_lesion import CHECKPOINT_KEY as MIN_LESION_KEY
from ..min_lesion import checked_min_lesion_pixels
from .configs import TransUNetConfig
from .transunet import TransUNet

FORMAT = "octfluid-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says what it holds."""


class CheckpointTooLargeError(CheckpointError, MemoryBudgetError):
    """A checkpoint that would inflate, or describe a model, beyond what octfluid loads: refused before torch
    reads it or the model is built. Also a ``MemoryError`` (see :mod:`napari_octfluid.memory`)."""

    def __init__(self, message: str, needed: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.needed, self.limit = needed, limit


# Far beyond any octfluid model (the paper's TransUNet: 2.25 million parameters, a 9 MB file) and its training
# state, far short of what exhausts a workstation: a file past these is damaged or not a model.
MAX_CHECKPOINT_BYTES = 2 * 2**30
MAX_MODEL_PARAMETERS = 200_000_000
LOAD_ADVICE = "Close other programs"


def save_checkpoint(path: str | Path, model: TransUNet, **extra: Any) -> Path:
    """Write model weights, its config and ``extra`` (loss spec and state, metrics, data summary...)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "decision_threshold": model.decision_threshold,
        MIN_LESION_KEY: getattr(model, "min_lesion_pixels", None),
        AXIAL_SPACING_KEY: model_axial_spacing(model),
        FITTED_CHECKPOINT_KEY: getattr(model, "fitted_axial_spacing_mm", None),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # the previous checkpoint stays whole until the new one is complete; written through a Python file so that a
    # full disk raises OSError (ENOSPC), which the CLI reports in one line (torch's own writer raises RuntimeError)
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        torch.save(payload, stream)
    return path


# what save_checkpoint writes from the model itself; everything else in a checkpoint is the caller's ``extra``
MODEL_FIELDS = (
    "format",
    "version",
    "model_config",
    "decision_threshold",
    MIN_LESION_KEY,
    AXIAL_SPACING_KEY,
    FITTED_CHECKPOINT_KEY,
    "model_state",
)


def update_checkpoint(path: str | Path, model: TransUNet, **changes: Any) -> Path:
    """Write ``model`` (weights, config, threshold) back to the checkpoint at ``path`` atomically, with ``changes``
    to its other fields and every field not changed kept: the one way a checkpoint is rewritten."""
    kept = {key: value for key, value in read_checkpoint(path).items() if key not in MODEL_FIELDS}
    return save_checkpoint(path, model, **{**kept, **changes})


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, refused with a clear message if it is not a safe octfluid checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file.")
    _check_archive(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # torch names the blocked callable when a pickle would import code
            raise CheckpointError(f"{path.name}: not a checkpoint file (it could not be unpickled).") from exc
        raise CheckpointError(
            f"{path.name}: refused, it holds Python objects that could run code when loaded "
            "(only weights-only checkpoints are opened)."
        ) from exc
    except Exception as exc:  # torch raises RuntimeError/EOFError/zip errors for damaged files
        raise CheckpointError(f"{path.name}: not a readable checkpoint ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        keys = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path.name}: not an octfluid checkpoint (it holds {keys}).")
    return payload


def load_model(path: str | Path, num_classes: int | None = None) -> tuple[TransUNet, dict[str, Any]]:
    """Build the model a checkpoint describes and load its weights.

    Raises
    ------
    CheckpointError
        For unsafe, foreign or damaged files, another architecture, or another class count than asked.
    """
    payload = read_checkpoint(path)
    name = Path(path).name
    try:
        config = TransUNetConfig.from_dict(payload["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: its model settings are not a TransUNet's ({exc}).") from exc
    if num_classes is not None and config.num_classes != num_classes:
        raise CheckpointError(f"{name}: holds a model for {config.num_classes} classes, but {num_classes} are needed.")
    _check_model_size(config, name)
    _check_weights(payload.get("model_state"), name)
    model = TransUNet(config)
    try:
        model.load_state_dict(payload["model_state"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{name}: its weights do not fit the TransUNet it describes ({str(exc).splitlines()[0]})."
        ) from exc
    model.decision_threshold = _decision_threshold(payload.get("decision_threshold"), name)
    try:  # absent (every checkpoint older than the rule): off, as those models always predicted
        model.min_lesion_pixels = checked_min_lesion_pixels(payload.get(MIN_LESION_KEY), name) or None
        # absent (every checkpoint older than the key, the shipped weights included): trained on Spectralis scans
        model.axial_spacing_mm = checked_axial_spacing(payload.get(AXIAL_SPACING_KEY), name)
        # absent (every model but one fine-tuned on a scan whose file gave no axial spacing): none
        model.fitted_axial_spacing_mm = checked_fitted_axial_spacing(payload.get(FITTED_CHECKPOINT_KEY), name)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    return model.eval(), payload


def _decision_threshold(value: Any, name: str) -> float | None:
    """The stored fluid threshold as a float, or ``None`` (argmax); anything else is refused: a string or a list
    would fail deep inside prediction, and NaN or a value outside (0, 1) would find no fluid, or all of it."""
    if value is None:
        return None
    if torch.is_tensor(value) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
        raise CheckpointError(
            f"{name}: its decision_threshold is {shown}, not a number: the file is damaged or "
            "was not written by octfluid."
        )
    if not 0 < value < 1:  # NaN fails this too
        raise CheckpointError(
            f"{name}: its decision_threshold is {value}, not a fluid probability between 0 "
            "and 1: the file is damaged or was not written by octfluid."
        )
    return float(value)


def _check_archive(path: Path) -> None:
    """Refuse, before torch reads anything, a file that is not the zip archive ``torch.save`` writes or that
    would inflate beyond a model file or the memory budget: the sizes its zip directory declares are what torch
    allocates, and a few megabytes of compressed zeros can declare gigabytes. (torch's older, non-zip format
    declares tensor sizes inside the pickle, allocated before anything is checked, so it is not opened.)"""
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointTooLargeError(
            f"{path.name}: refused, it is {format_bytes(size)}, more than any octfluid "
            f"checkpoint ({format_bytes(MAX_CHECKPOINT_BYTES)} at most).",
            size,
        )
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(
            f"{path.name}: not a readable checkpoint (not the zip archive torch.save writes: {exc})."
        ) from exc
    if inflated > MAX_CHECKPOINT_BYTES:
        raise CheckpointTooLargeError(
            f"{path.name}: refused, it would inflate to {format_bytes(inflated)}, more "
            f"than any octfluid checkpoint ({format_bytes(MAX_CHECKPOINT_BYTES)} at "
            "most): the file is damaged or not a model.",
            inflated,
        )
    try:
        check_allocation(inflated, "Loading this checkpoint", LOAD_ADVICE)
    except MemoryBudgetError as error:
        raise CheckpointTooLargeError(f"{path.name}: {error}", error.needed, error.limit) from None


def _check_model_size(config: TransUNetConfig, name: str) -> None:
    """Refuse a config for a gigantic model from its parameter count, computed without building it."""
    parameters = config.parameter_count()
    if parameters > MAX_MODEL_PARAMETERS:
        raise CheckpointTooLargeError(
            f"{name}: describes a TransUNet of {parameters:,} parameters; octfluid builds "
            f"at most {MAX_MODEL_PARAMETERS:,} (the paper's has 2,252,546): the file "
            "is damaged or not an octfluid model.",
            config.build_bytes(),
        )
    try:
        check_allocation(config.build_bytes(), f"Building its model ({parameters:,} parameters)", LOAD_ADVICE)
    except MemoryBudgetError as error:
        raise CheckpointTooLargeError(f"{name}: {error}", error.needed, error.limit) from None


def _check_weights(state: Any, name: str) -> None:
    """Refuse weights that would load without an error and then predict nonsense: NaN or infinite values give
    "no fluid" everywhere, and integer or complex tensors would be cast silently. BatchNorm's
    ``num_batches_tracked`` counter is the one integer a TransUNet holds."""
    if state is None:
        return  # no weights at all: reported with the fields that do not fit
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{name}: its model_state is a {type(state).__name__}, not weights by name: the file "
            "is damaged or was not written by octfluid."
        )
    for key, tensor in state.items():
        if not torch.is_tensor(tensor):
            raise CheckpointError(
                f"{name}: its weight {key!r} is a {type(tensor).__name__}, not a tensor: the file "
                "is damaged or was not written by octfluid."
            )
        if str(key).split(".")[-1] == "num_batches_tracked" and tensor.dtype == torch.int64 and tensor.numel() == 1:
            continue
        if not tensor.dtype.is_floating_point:
            raise CheckpointError(
                f"{name}: its weight {key!r} is stored as {str(tensor.dtype).removeprefix('torch.')}"
                ", not as floating point: the file is damaged or was not written by octfluid."
            )
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            raise CheckpointError(
                f"{name}: its weight {key!r} holds {bad} NaN or infinite value(s): the model "
                "diverged in training or the file is damaged, and it would find no fluid. "
                "Use another checkpoint."
            )
