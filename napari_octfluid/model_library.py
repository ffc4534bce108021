"""Fine-tuned models kept by name: one for a clinic, one for a device, each in its own checkpoint file in the
user's model folder, with the device it was adapted to.

A model fine-tuned far on the scans of one device (``training.finetune.adaptation_for``) may forget what it knew
about others; kept under its own name and offered only for scans from its device (:func:`model_for_device`, from the
``device`` a DICOM or vendor file records), it does not need to stay good elsewhere, and the shipped weights stay
the default for every other scan. The folder is ``OCTFLUID_MODELS`` where set, else the user's data folder
(platformdirs: ``~/.local/share/octfluid/models`` on Linux). Numpy/torch only: the Fine-tune widget's Keep, the
Predict widget and ``octfluid train --init --name`` use it alike.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

MODELS_ENV = "OCTFLUID_MODELS"
NAME_KEY = "model_name"  # checkpoint keys written by Keep
DEVICE_KEY = "for_device"
ALLOWED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,63}")
WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?", re.IGNORECASE)


class ModelNameError(ValueError):
    """A model name that cannot name a file in the model folder."""


@dataclass(frozen=True)
class KeptModel:
    """A model in the folder: its ``name``, its file, the ``device`` it was adapted to ("" for any) and the
    checkpoint it was fine-tuned from."""

    name: str
    path: Path
    device: str = ""
    fine_tuned_from: str = ""


def library_folder() -> Path:
    """Where kept models live (created when the first one is kept)."""
    configured = os.environ.get(MODELS_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_data_path("octfluid") / "models"


def checked_name(name: str) -> str:
    """``name`` stripped, refused in one line if it could not be a file name on every system."""
    name = str(name).strip()
    reserved = WINDOWS_RESERVED.fullmatch(name) is not None  # CON, NUL, COM1... cannot be files on Windows
    if not ALLOWED_NAME.fullmatch(name) or name.endswith((".", " ")) or reserved:
        raise ModelNameError(
            f"{name!r} cannot name a model: use up to 64 letters, digits, spaces and . _ - ( ), starting with a "
            "letter or digit (e.g. 'Clinic A Cirrus')."
        )
    return name


def model_path(name: str, folder: Path | None = None) -> Path:
    """The file a model of this ``name`` is kept in."""
    return (folder or library_folder()) / f"{checked_name(name)}.pt"


def kept_models(folder: Path | None = None) -> list[KeptModel]:
    """Every model in the folder, by name, read from the small description kept beside each checkpoint (listing
    never loads weights: the Predict widget lists them while napari draws). A checkpoint without a readable
    description is offered by its file name, for any device."""
    folder = folder or library_folder()
    models = []
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            described = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            described = {}
        described = described if isinstance(described, dict) else {}
        models.append(
            KeptModel(
                str(described.get(NAME_KEY) or path.stem),
                path,
                str(described.get(DEVICE_KEY) or ""),
                str(described.get("fine_tuned_from") or ""),
            )
        )
    return models


def same_device(a: str, b: str) -> bool:
    """Whether two device descriptions name the same device: case, spacing and punctuation aside
    ("HEIDELBERG ENGINEERING Spectralis" is "Heidelberg Engineering  spectralis")."""

    def key(text: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", str(text).lower()))

    return bool(key(a)) and key(a) == key(b)


def model_for_device(device: str | None, models: list[KeptModel]) -> KeptModel | None:
    """The kept model made for ``device`` (the scan's, as its file records it), or None: the shipped weights."""
    if not device:
        return None
    matching = [model for model in models if same_device(model.device, device) and model.path.is_file()]
    # the newest file when several were kept for one device: the last adaptation is the one the user meant
    return max(matching, key=_modified) if matching else None


def _modified(model: KeptModel) -> float:
    try:
        return model.path.stat().st_mtime
    except OSError:  # removed since it was listed: never the newest
        return float("-inf")


def keep_model(checkpoint: Path, name: str, device: str = "", folder: Path | None = None) -> Path:
    """Write the fine-tuned ``checkpoint`` into the model folder as ``name``, adapted to ``device`` (the name and
    device stored in the checkpoint and in a description beside it); a model of that name is replaced, atomically."""
    from .model.checkpoint import MODEL_FIELDS, load_model, save_checkpoint

    target = model_path(name, folder)
    model, payload = load_model(checkpoint)  # refuses anything that is not a safe octfluid checkpoint
    extra = {key: value for key, value in payload.items() if key not in MODEL_FIELDS}
    extra.update({NAME_KEY: checked_name(name), DEVICE_KEY: str(device or "").strip()})
    save_checkpoint(target, model, **extra)
    describe(target, extra)
    return target


def describe(path: Path, payload: dict) -> Path:
    """The description :func:`kept_models` reads, written beside the model at ``path`` from its checkpoint's
    ``payload`` (name, device, origin)."""
    from ._atomic import atomic_path

    described = {key: str(payload.get(key) or "") for key in (NAME_KEY, DEVICE_KEY, "fine_tuned_from")}
    target = Path(path).with_suffix(".json")
    with atomic_path(target) as temporary:
        Path(temporary).write_text(json.dumps(described, indent=1), encoding="utf-8")
    return target
