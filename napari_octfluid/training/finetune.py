"""Fine-tuning on a few corrected B-scans: the preset, the choice of B-scans, the run, and the before/after
comparison. The Fine-tune widget and ``octfluid train --init`` both use it; it imports neither napari nor Qt.

The run and the comparison are generators of typed progress events that return their result, like prediction and
training: drive them with ``events.drive`` (command line, tests) or in napari's ``thread_worker`` (the widget).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Sequence

import numpy as np
import torch

from ..events import Notice
from ..inference import PredictProgress, predict
from ..labels import FLUID, IGNORE, counts_against, training_labels
from ..losses import SegmentationLoss
from ..model import CheckpointError, TransUNet, load_model, save_checkpoint
from ..subjects import Subject
from .data import BscanSet
from .engine import EpochEnd, StepEnd, TrainConfig, TrainResult, train
from .replay import REPLAY_CROPS, load_replay_crops
from .schedule import one_cycle_schedule

TRAINED = "trained on"
VALIDATION = "validation"
NOT_USED = "not used"
CROP_SIDE = 256  # the crop the shipped weights were trained with; smaller B-scans are taken whole


def finetune_config(image_shape: Sequence[int], **overrides) -> TrainConfig:
    """The settings for fine-tuning on a few corrected B-scans of ``image_shape`` (``[..., Y, X]``: only the last
    two sizes matter), with ``overrides`` (``TrainConfig`` field names) replacing any of them.

    The choices come from the fine-tuning benchmark (docs/finetune_benchmark.md): the decoder alone learns
    (``trainable="decoder"``: as much gained on the corrected subject as the whole network, less lost on others);
    half of the change is kept (``change_kept=0.5``, weight-space ensembling, Wortsman et al. 2022, eq. 1: other
    subjects lost 0.002 Dice instead of 0.010); BatchNorm keeps the starting statistics (batches of a few crops from a
    few B-scans re-estimated them badly and cost 0.1 Dice); a learning rate ten times below training from scratch.
    """
    if len(image_shape) < 2:
        raise ValueError(f"image_shape needs at least the B-scan's height and width, got {tuple(image_shape)}")
    crop = tuple(min(CROP_SIDE, int(side)) for side in image_shape[-2:])
    preset = TrainConfig(
        loss="composite",
        epochs=5,
        steps_per_epoch=20,
        batch_size=4,
        crop=crop,
        learning_rate=1e-4,
        freeze_batchnorm=True,
        trainable="decoder",
        change_kept=0.5,
    )
    return dataclasses.replace(preset, **overrides)


def replay_by_default() -> bool:
    """Whether fine-tuning replays the shipped training crops by default: yes wherever this installation has them
    (without them a few corrections made the model forget up to 0.20 Dice on other subjects; training/replay.py)."""
    return REPLAY_CROPS.is_file()


def warm_up_training_imports(done: threading.Event | None = None) -> None:
    """Import what the first training step imports (building an AdamW optimiser pulls in torch._dynamo, seconds of
    imports that stalled napari's interface for ~0.3 s at the first step); run it in a thread while the user is
    still choosing."""
    try:
        parameter = torch.nn.Parameter(torch.zeros(1))
        optimiser = torch.optim.AdamW([parameter], lr=1e-3)
        one_cycle_schedule(optimiser, finetune_config((256, 256)), 2, lambda: 0.0)  # what the engine builds
    finally:
        if done is not None:
            done.set()


# --- which B-scans --------------------------------------------------------------------------------------------
def parse_bscan_list(text: str, n_bscans: int) -> list[int]:
    """'0, 3, 5-7' -> [0, 3, 5, 6, 7]; refuses indices outside the volume."""
    chosen: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise ValueError(f"cannot read {part!r}: write B-scans as '0, 3, 5-7'")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last >= n_bscans or first > last:
            raise ValueError(f"{part!r} is outside B-scans 0..{n_bscans - 1}")
        chosen.extend(range(first, last + 1))
    return sorted(set(chosen))


def n_bscans(labels: np.ndarray) -> int:
    """B-scans in ``labels[Z, Y, X]``, or 1 for a single ``[Y, X]`` B-scan."""
    return int(labels.shape[0]) if np.ndim(labels) == 3 else 1


def choose_bscans(
    labels: np.ndarray,
    explicit: Sequence[int] = (),
    validation: Sequence[int] = (),
    reviewed: np.ndarray | None = None,
    model: str = "",
) -> tuple[list[int], list[int]]:
    """The training and the validation B-scans of the user's ``labels[Z, Y, X]`` (or one B-scan).

    Training: the ``explicit`` list when there is one; else, when the labels have a review state (``reviewed``, one
    flag per B-scan, and the ``model`` that predicted them), the B-scans corrected or accepted in Review (none if
    nothing is reviewed yet: unreviewed labels are the model's own prediction, nothing to learn from); else, for a
    mask octfluid did not predict (an expert's file), every B-scan holding fluid. A B-scan given for ``validation``
    is never trained on.
    """
    count = n_bscans(labels)
    wanted_validation = sorted({int(z) for z in validation})
    outside = [z for z in [*explicit, *wanted_validation] if not 0 <= int(z) < count]
    if outside:
        raise ValueError(f"B-scan {outside[0]} is outside B-scans 0..{count - 1}")
    if len(explicit):
        chosen = sorted({int(z) for z in explicit})
    elif reviewed is not None and (model or np.any(reviewed)):
        reviewed = np.asarray(reviewed, bool)
        if reviewed.shape != (count,):
            raise ValueError(f"{reviewed.size} review flags for {count} B-scans")
        chosen = np.flatnonzero(reviewed).tolist()
    else:
        volume = training_labels(labels)
        volume = volume[None] if volume.ndim == 2 else volume
        chosen = np.flatnonzero((volume == FLUID).reshape(count, -1).any(axis=1)).tolist()
    held_out = set(wanted_validation)
    return [z for z in chosen if z not in held_out], wanted_validation


def bscan_roles(count: int, trained: Sequence[int], validation: Sequence[int]) -> np.ndarray:
    """What each of ``count`` B-scans was used for in fine-tuning: ``TRAINED``, ``VALIDATION`` or ``NOT_USED``."""
    outside = [z for z in [*trained, *validation] if not 0 <= int(z) < count]
    if outside:
        raise ValueError(f"B-scan {outside[0]} is outside B-scans 0..{count - 1}")
    roles = np.full(count, NOT_USED, dtype=object)
    roles[list(trained)] = TRAINED
    roles[list(validation)] = VALIDATION
    return roles


# --- the run --------------------------------------------------------------------------------------------------
def prepare_and_train(
    model: TransUNet,
    volume: tuple[np.ndarray, np.ndarray, str],
    chosen: Sequence[int],
    validation: Sequence[int],
    config: TrainConfig,
    loss: SegmentationLoss | None = None,
    replay: bool = False,
) -> Generator[StepEnd | EpochEnd | Notice, None, TrainResult]:
    """Fine-tune a copy of ``model`` on the ``chosen`` B-scans of ``volume = (images, user labels, name)``,
    validating on the ``validation`` ones; ``replay`` mixes in the shipped training crops.

    The user's labels become training labels here (0 background, 1 fluid, 255 not annotated: never learnt as
    fluid), in the worker: normalising and converting the B-scans is work the interface should not wait for.
    """
    images, user_labels, name = volume
    notices: list[str] = []
    labels = training_labels(user_labels, name=f"The labels of {name}", notify=notices.append)
    for message in notices:
        yield Notice(message)
    subject = Subject(name, images, labels)
    train_data = BscanSet.from_subjects([subject], [list(chosen)])
    val_data = BscanSet.from_subjects([subject], [list(validation)]) if len(validation) else None
    replay_data = load_replay_crops() if replay else None
    return (yield from train(model, train_data, val_data, config, None, loss, replay_data))


@dataclass(frozen=True)
class BscanChoice:
    """What the user asked to train on, as ``choose_bscans`` reads it: an ``explicit`` list (or none), the
    ``validation`` B-scans, and the review state of the labels (``reviewed`` flags and the ``model`` that predicted
    them; None and "" for labels without one)."""

    explicit: Sequence[int] = ()
    validation: Sequence[int] = ()
    reviewed: np.ndarray | None = None
    model: str = ""


@dataclass
class FineTuned:
    """A fine-tuning run as the widget offers it: the run's ``result``, the ``starting_model`` it started from (the
    comparison's "before"), and the B-scans it was ``trained_on`` and ``validated_on``."""

    result: TrainResult
    starting_model: TransUNet
    trained_on: list[int]
    validated_on: list[int]


def load_and_finetune(
    weights: Path | None,
    volume: tuple[np.ndarray, np.ndarray, str],
    choice: BscanChoice,
    config: TrainConfig,
    replay: bool = False,
) -> Generator[StepEnd | EpochEnd | Notice, None, FineTuned]:
    """The Fine-tune widget's job, all of it in the worker: the starting ``weights`` loaded and checked (a missing
    or refused checkpoint raises ``CheckpointError``), the B-scans chosen from the user's labels (``choose_bscans``:
    an expert's mask is read over the whole volume; none to train on raises ``ValueError``), then
    :func:`prepare_and_train` with the loss ``config.loss`` names (built by the engine). Loading a model and reading
    the volume took 0.7-2.6 s, which the interface must not wait for (issue 20)."""
    if weights is None or not Path(weights).is_file():
        raise CheckpointError(
            "No weights to start from: choose a checkpoint file (no trained default weights are installed)."
        )
    starting_model, _ = load_model(weights)
    chosen, validation = choose_bscans(volume[1], choice.explicit, choice.validation, choice.reviewed, choice.model)
    if not chosen:
        raise ValueError("No labelled B-scans to train on.")
    result = yield from prepare_and_train(starting_model, volume, chosen, validation, config, None, replay)
    return FineTuned(result, starting_model, chosen, validation)


def save_fine_tuned(
    path: Path, result: TrainResult, loss_spec: str, fine_tuned_from: Path
) -> Generator[None, None, Path]:
    """Keep's job: the fine-tuned model of ``result`` saved to ``path`` with its loss and history, in the worker
    (writing a model's weights is disk work the interface should not wait for)."""
    yield from ()  # a generator like every job, with no step to report
    save_checkpoint(
        path,
        result.model,
        loss_spec=getattr(result.loss, "spec", loss_spec),
        loss_state=result.loss.state_dict(),
        fine_tuned_from=str(fine_tuned_from),
        history=[vars(epoch) for epoch in result.history],
    )
    return Path(path)


# --- before and after -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonProgress:
    """B-scans predicted so far by the two models together (the starting model first, then the fine-tuned one)."""

    model: str  # "starting" or "fine-tuned": the one predicting now
    done: int
    total: int


@dataclass
class Comparison:
    """Per-B-scan Dice of the starting and of the fine-tuned model against the user's labels."""

    used_for: np.ndarray  # TRAINED, VALIDATION or NOT_USED per B-scan
    dice_before: np.ndarray  # float per B-scan; NaN where not comparable
    dice_after: np.ndarray
    labels: np.ndarray  # uint8 [Z, Y, X]: the fine-tuned model's prediction

    @property
    def summary(self) -> str:
        return comparison_summary(self.used_for, self.dice_before, self.dice_after)


def compare_models(
    images: np.ndarray,
    reference: np.ndarray,
    base_model: TransUNet,
    tuned_model: TransUNet,
    used_for: Sequence[str],
    device: str = "auto",
    batch_size: int | None = None,
) -> Generator[ComparisonProgress | Notice, None, Comparison]:
    """Predict ``images[Z, Y, X]`` (or one B-scan) with the starting and the fine-tuned model and score both per
    B-scan against the user's ``reference`` labels (Dice, Dice 1945 / Sørensen 1948: 2TP / (2TP + FP + FN), not
    counting pixels labelled ``IGNORE``).

    Dice is NaN, not comparable, on B-scans ``used_for`` neither training nor validation: there the labels are the
    starting model's own unreviewed prediction, so the starting model would score 1 against itself. It is NaN too on
    B-scans with no annotated pixel.
    """
    images = np.asarray(images)
    count = n_bscans(images)
    used_for = np.asarray(used_for, dtype=object)
    if used_for.shape != (count,):
        raise ValueError(f"{used_for.size} roles for {count} B-scans")
    reference = training_labels(reference, name="the corrected labels")
    if reference.shape != images.shape:
        raise ValueError(f"The scan {images.shape} and the labels {reference.shape} differ in shape.")
    reference = reference[None] if reference.ndim == 2 else reference
    predictions = []
    for offset, (stage, model) in enumerate((("starting", base_model), ("fine-tuned", tuned_model))):
        yield ComparisonProgress(stage, offset * count, 2 * count)
        events = predict(images, model, device, batch_size)
        while True:
            try:
                event = next(events)
            except StopIteration as finished:
                predictions.append(finished.value.labels)
                break
            if isinstance(event, PredictProgress):
                yield ComparisonProgress(stage, offset * count + event.done, 2 * count)
            elif isinstance(event, Notice):
                yield event
    comparable = (used_for != NOT_USED) & (reference != IGNORE).reshape(count, -1).any(axis=1)
    before, after = (np.where(comparable, counts_against(labels, reference).dice, np.nan) for labels in predictions)
    return Comparison(used_for, before, after, predictions[1])


def comparison_summary(used_for: np.ndarray, dice_before: np.ndarray, dice_after: np.ndarray) -> str:
    """What the old and new model's Dice against the user's labels says, honestly: only B-scans held out from
    training tell whether the new model is better (on the trained ones it has seen the answer; unreviewed labels are
    the old model's own prediction). The fine-tuning benchmark saw well-trained weights lose Dice."""
    used_for = np.asarray(used_for, dtype=object)
    dice_before, dice_after = np.asarray(dice_before, float), np.asarray(dice_after, float)
    scored = np.isfinite(dice_before) & np.isfinite(dice_after)
    held_out = (used_for == VALIDATION) & scored
    if held_out.any():
        before, after = dice_before[held_out].mean(), dice_after[held_out].mean()
        verdict = (
            "better there: keep it."
            if after > before
            else "not better there: Revert is advised (correct more B-scans and train again)."
        )
        return (
            f"Validation B-scans (not trained on): mean Dice {before:.3f} before, {after:.3f} after; "
            f"the new model is {verdict}"
        )
    trained = (used_for == TRAINED) & scored
    if not trained.any():
        return "No B-scan with annotated pixels to compare the two models on."
    return (
        f"Trained B-scans: mean Dice {dice_before[trained].mean():.3f} before, {dice_after[trained].mean():.3f} "
        "after. That says how well it learned them, not how it does on others: keep a corrected B-scan out "
        "of training ('Validate on B-scans') to judge it."
    )
