"""Training recipes: a TOML file that names the data, the model configuration and the training settings, so
that one command rebuilds a model (``octfluid train --recipe FILE``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomllib

from ..axial import SPECTRALIS_AXIAL_SPACING_MM
from ..model import MODEL_CONFIGS, TransUNetConfig
from ..subjects import Subject
from .data import BscanSet
from .engine import TrainConfig
from .shared_data import load_subjects


@dataclass
class Recipe:
    model_config: TransUNetConfig
    train_config: TrainConfig
    train_data: BscanSet
    val_data: BscanSet | None
    text: str


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: not valid TOML ({exc})") from exc


def recipe_subjects(path: str | Path, part: str) -> list[Subject]:
    """The shared-data subjects a recipe names under ``[data] train`` or ``[data] validation``."""
    path = Path(path)
    data = _read(path).get("data", {})
    root = (path.parent / data.get("shared_root", "../shared/data")).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{path.name}: the shared data folder {root} does not exist")
    names = data.get(part) or []
    return load_subjects(root, list(names)) if names else []


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    recipe = _read(path)

    def subjects_set(part):
        # subjects whose files give another axial pixel size are resampled to a new model's (Spectralis') one, at
        # which prediction will hand it every scan of known spacing; the shared TIFFs give none and stay as they are
        subjects = recipe_subjects(path, part)
        return BscanSet.from_subjects(subjects, axial_spacing_mm=SPECTRALIS_AXIAL_SPACING_MM) if subjects else None

    config_name = recipe.get("model", {}).get("config", "paper")
    if config_name not in MODEL_CONFIGS:
        raise ValueError(f"{path.name}: unknown model config {config_name!r}; choose from {sorted(MODEL_CONFIGS)}")
    return Recipe(
        MODEL_CONFIGS[config_name],
        TrainConfig.from_dict(recipe.get("training", {})),
        subjects_set("train"),
        subjects_set("validation"),
        path.read_text(),
    )
