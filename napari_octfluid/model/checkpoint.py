"""Checkpoints: plain dictionaries of tensors and settings, loaded with ``weights_only=True`` so that
opening one never runs code, and written atomically so a crash never leaves half a file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path
from .configs import TransUNetConfig
from .transunet import TransUNet

FORMAT = "octfluid-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says what it holds."""


def save_checkpoint(path: str | Path, model: TransUNet, **extra: Any) -> Path:
    """Write model weights, its config and ``extra`` (loss spec and state, metrics, data summary...)."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "model_config": model.config.to_dict(),
               "decision_threshold": model.decision_threshold,
               "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:  # the previous checkpoint stays whole until the new one is complete
        torch.save(payload, temporary)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, refused with a clear message if it is not a safe octfluid checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # torch names the blocked callable when a pickle would import code
            raise CheckpointError(f"{path.name}: not a checkpoint file (it could not be unpickled).") from exc
        raise CheckpointError(f"{path.name}: refused, it holds Python objects that could run code when loaded "
                              "(only weights-only checkpoints are opened).") from exc
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
        raise CheckpointError(f"{name}: holds a model for {config.num_classes} classes, "
                              f"but {num_classes} are needed.")
    model = TransUNet(config)
    try:
        model.load_state_dict(payload["model_state"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: its weights do not fit the TransUNet it describes "
                              f"({str(exc).splitlines()[0]}).") from exc
    threshold = payload.get("decision_threshold")
    model.decision_threshold = float(threshold) if threshold is not None else None
    return model.eval(), payload
