"""Fine-tuning on a few corrected B-scans: the preset, the choice of B-scans, the run, and the before/after
comparison. The Fine-tune widget and ``octfluid train --init`` both use it; it imports neither napari nor Qt.

The run and the comparison are generators of typed progress events that return their result, like prediction and
training: drive them with ``events.drive`` (command line, tests) or in napari's ``thread_worker`` (the widget).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Generator, Sequence

import numpy as np
import torch

from ..axial import model_axial_spacing, scan_axial_spacing
from ..events import Notice
from ..inference import PredictProgress, predict
from ..labels import FLUID, IGNORE, counts_against, training_labels
from ..losses import SegmentationLoss
from ..metrics import Confusion
from ..model import CheckpointError, TransUNet, load_model, save_checkpoint
from ..subjects import Subject
from .axial_fit import AxialFit, fit_axial_spacing
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


# below this pooled Dice between the starting model's masks and the user's corrections the model is failing on
# the scan (another device, another grader), and fine-tuning goes further (adaptation_for). Chosen with
# benchmarks/bench_correction.py (docs/correction_benchmark.md): clean scans agreed to 0.885-0.980, scans made to look
# like another device to 0.447-0.711; 0.6 first, chosen on three of them, let a Cirrus-like scan (0.711) through
ADAPT_BELOW_AGREEMENT = 0.8
# a Dice over fewer corrected fluid pixels than this says little (a few specks, or corrections that only erase)
MIN_FLUID_TO_JUDGE = 200
# what fine-tuning changes when the model disagrees: every layer learns, for 300 steps at 3e-4, and all of the change
# is kept. On three scans made to look like an unaveraged scan of another device (benchmarks/bench_correction.py,
# 3 B-scans corrected by the robot), the other B-scans went from Dice 0.28 to 0.55 on average, where the preset
# reached 0.30 and the whole network for the preset's 100 steps at 1e-4 0.41; 1e-3 diverged (forgetting 0.3-0.5).
# Each step pulls the weights back towards the starting ones (start_pull, training/anchor.py: decoupled L2-SP). On the
# same three scans with the weights of 2026-11-30 (docs/correction_benchmark.md), pulls of 0, 30, 100, 300 and 1000
# gave the other B-scans Dice 0.722, 0.715, 0.701, 0.672, 0.616 and NoC@90 11.96, 11.85, 12.48, 12.89, 14.33, while
# another patient of the original device lost 0.106, 0.073, 0.041 and 0.016 and gained 0.002. With the axial pixel
# size fitted to the corrections first (training/axial_fit.py; 2026-12-02, the same scans, Duke 5 inside its graders'
# band), pulls of 30 and 100 gave Dice 0.769 and 0.763, NoC@90 10.63 and 10.70, and lost 0.038 and 0.015 there
# (per scan 0.020 / 0.014 / 0.080 and 0.000 / 0.006 / 0.039): at the right size there is less to learn, and 100 keeps
# the original device within issue 19's 0.02 for 0.006 Dice. Chosen on the scans it is reported on (in-sample). Those
# figures came from a robot that undid its own removals (benchmarks/correction_robot.py, mended 2026-12-02); with its
# fuller corrections the fit finds the true size and the preset does as well as this on top of it (adaptation_for)
WHOLE_NETWORK = dict(trainable="all", change_kept=1.0, learning_rate=3e-4, epochs=15, start_pull=100.0)


def adaptation_for(agreement: float, other_axial_size: bool = False) -> dict:
    """The overrides of :func:`finetune_config` for corrections the starting model agrees with to ``agreement``
    (pooled Dice of its masks against the corrected ones, on the B-scans trained on): none while it agrees (the
    preset learns little and forgets little: where the model is already right, a few corrections are a style, not
    a lesson), :data:`WHOLE_NETWORK` when it disagrees (a scan from another device, where the preset gains little;
    docs/correction_benchmark.md). A model adapted this far forgets some of the original device (0.04-0.08 Dice on the
    benchmark's shifted scans) and is kept under its own name for its device (``model_library``), where it is used
    instead.

    ``other_axial_size``: the corrections fitted the scan another axial pixel size than the model's
    (:mod:`~napari_octfluid.training.axial_fit`): the fit has done the adapting, and the preset runs at that size,
    however little the model agreed at the scan's own rows. On the benchmark's three scans (UMN 12, 13, Duke 5) made to
    look like an unaveraged scan and like a Cirrus, spacing unknown, the robot correcting 3 B-scans each (2026-12-02,
    docs/correction_benchmark.md), the fit alone took the other B-scans from Dice 0.549 to 0.832 and from 0.580 to
    0.812; the preset on top gave 0.830 and 0.807, NoC@90 7.91 and 7.39, and the original device lost 0.004 and
    0.001; the whole network (pull 100) gave 0.831 and 0.814, NoC@90 7.67 and 6.81, and lost 0.022 and 0.021 (pull
    300: 0.830 and 0.815, 0.018 lost): as much Dice, 0.2-0.6 fewer actions, five to twenty times the forgetting and
    three times the training time."""
    if other_axial_size:
        return {}
    if not np.isfinite(agreement) or agreement >= ADAPT_BELOW_AGREEMENT:
        return {}
    return dict(WHOLE_NETWORK)


def judged_agreement(counts: Confusion) -> float:
    """The pooled Dice of ``counts`` (:func:`agreement_counts`), or NaN where the corrections hold fewer than
    :data:`MIN_FLUID_TO_JUDGE` fluid pixels: a Dice over a few specks, or 0 for corrections that only erased false
    fluid, would send fine-tuning far on no evidence."""
    counts = counts.pooled()
    if float(counts.tp + counts.fn) < MIN_FLUID_TO_JUDGE:
        return float("nan")
    return float(counts.dice)


def adaptation_message(
    agreement: float, overrides: dict, kept: Collection[str] = (), other_axial_size: bool = False
) -> str:
    """What the adaptive rule decided, and why, in a sentence for the user (``kept``: the settings the user set,
    which stay as they are; ``other_axial_size``: the corrections fitted another axial pixel size)."""
    if other_axial_size:
        return (
            "Your corrections fit another axial pixel size than the model's, as a scan of another device would: "
            "fine-tuning as set, at that size (there the whole network gained no more and forgot more of other "
            "scans). Keep the model under a name for this device."
        )
    if not np.isfinite(agreement):
        return "Too little fluid in your corrections to judge how far the model agrees: fine-tuning as set."
    if overrides:
        own = f" (your {', '.join(sorted(kept))} kept as set)" if kept else ""
        return (
            f"The model agreed with your corrections to Dice {agreement:.2f} only (below {ADAPT_BELOW_AGREEMENT:.2f}): "
            f"fine-tuning goes further ({_in_words(overrides)}){own}. Keep the model under a name for this device."
        )
    if kept and adaptation_for(agreement):
        return f"The model agreed with your corrections to Dice {agreement:.2f}: fine-tuning with your settings."
    return f"The model agreed with your corrections to Dice {agreement:.2f}: fine-tuning as set."


def _in_words(overrides: dict) -> str:
    words = {
        "trainable": lambda v: "the whole network learns" if v == "all" else f"the {v} learns",
        "change_kept": lambda v: "all of the change kept" if v == 1 else f"{v:.0%} of the change kept",
        "learning_rate": lambda v: f"learning rate {v:g}",
        "epochs": lambda v: f"{v} epochs",
        "start_pull": lambda v: f"held near the starting weights (pull {v:g})" if v else "no pull to the start",
    }
    return ", ".join(words[key](value) if key in words else f"{key} {value}" for key, value in overrides.items())


def agreement_counts(
    model: TransUNet,
    images: np.ndarray,
    labels: np.ndarray,
    chosen: Sequence[int],
    device: str = "auto",
    axial_spacing_mm: float | None = None,
) -> Generator[Notice, None, Confusion]:
    """How far ``model`` already agrees with the user's ``labels`` on the ``chosen`` B-scans of ``images``: the
    pooled fluid counts of its masks against them (labels as training reads them: 255 is not annotated), whose Dice
    :func:`adaptation_for` decides on; several volumes pool by adding them. Predicts only those B-scans, as
    prediction does (``axial_spacing_mm``)."""
    images, labels = np.asarray(images), training_labels(labels)
    if images.ndim == 2:
        images, labels = images[None], labels[None]
    chosen = list(chosen)
    events = predict(images[chosen], model, device, axial_spacing_mm=axial_spacing_mm)
    while True:
        try:
            event = next(events)
        except StopIteration as finished:
            return counts_against(finished.value.labels, labels[chosen]).pooled()
        if isinstance(event, Notice):
            yield event


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
    is never trained on, and must be reviewed where the labels have a review state from a prediction: an
    unreviewed B-scan holds the model's own prediction, which scored the starting model Dice 1.000 against itself
    and pushed the verdict towards Revert.
    """
    count = n_bscans(labels)
    wanted_validation = sorted({int(z) for z in validation})
    outside = [z for z in [*explicit, *wanted_validation] if not 0 <= int(z) < count]
    if outside:
        raise ValueError(f"B-scan {outside[0]} is outside B-scans 0..{count - 1}")
    if reviewed is not None and model:
        unreviewed = [z for z in wanted_validation if not np.asarray(reviewed, bool)[z]]
        if unreviewed:
            raise ValueError(
                f"B-scan {unreviewed[0]} is not reviewed: its labels are the model's own prediction, against which "
                "the model would score itself. Validate on B-scans you corrected or accepted in Review."
            )
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
    axial_spacing_mm: float | None = None,
) -> Generator[StepEnd | EpochEnd | Notice, None, TrainResult]:
    """Fine-tune a copy of ``model`` on the ``chosen`` B-scans of ``volume = (images, user labels, name)``,
    validating on the ``validation`` ones; ``replay`` mixes in the shipped training crops. With the scan's
    ``axial_spacing_mm`` (where its file gives it) the B-scans are resampled to the model's axial pixel size, as
    prediction sees them (:mod:`~napari_octfluid.axial`).

    The user's labels become training labels here (0 background, 1 fluid, 255 not annotated: never learnt as
    fluid), in the worker: normalising and converting the B-scans is work the interface should not wait for.
    """
    images, user_labels, name = volume
    notices: list[str] = []
    labels = training_labels(user_labels, name=f"The labels of {name}", notify=notices.append)
    for message in notices:
        yield Notice(message)
    subject = Subject(name, images, labels, spacing_mm=(None, axial_spacing_mm, None))
    at = model_axial_spacing(model)
    train_data = BscanSet.from_subjects([subject], [list(chosen)], axial_spacing_mm=at)
    val_data = BscanSet.from_subjects([subject], [list(validation)], axial_spacing_mm=at) if len(validation) else None
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
    comparison's "before"), the B-scans it was ``trained_on`` and ``validated_on``, and how it adapted."""

    result: TrainResult
    starting_model: TransUNet
    trained_on: list[int]
    validated_on: list[int]
    agreement: float = float("nan")  # the starting model's Dice against the corrections (NaN: not measured)
    config: TrainConfig | None = None  # the settings it ran with, after adaptation
    adapted: bool = False  # whether the adaptive rule changed any setting
    # the axial pixel size (mm) fitted to the corrections for a scan whose file gives none (training/axial_fit.py),
    # which the new model keeps; None where nothing was fitted
    fitted_axial_spacing_mm: float | None = None


def load_and_finetune(
    weights: Path | None,
    volume: tuple[np.ndarray, np.ndarray, str],
    choice: BscanChoice,
    config: TrainConfig,
    replay: bool = False,
    adapt: bool = True,
    axial_spacing_mm: float | None = None,
    explicit: Collection[str] = (),
) -> Generator[StepEnd | EpochEnd | Notice, None, FineTuned]:
    """The Fine-tune widget's job, all of it in the worker: the starting ``weights`` loaded and checked (a missing
    or refused checkpoint raises ``CheckpointError``), the B-scans chosen from the user's labels (``choose_bscans``:
    an expert's mask is read over the whole volume; none to train on raises ``ValueError``), with ``adapt`` the
    settings adapted to how far the model disagrees with the corrections and, for a scan whose file gives no axial
    spacing, to the size they fit (:func:`with_fitted_axial_spacing`, :func:`adapted_to`; the settings named in
    ``explicit``, which the user chose, stay as given; a notice says what was decided and why), then
    :func:`prepare_and_train` with the loss ``config.loss`` names (built by the engine), at the model's axial pixel
    size where the scan's ``axial_spacing_mm`` is known. Loading a model and reading
    the volume took 0.7-2.6 s, which the interface must not wait for (issue 20)."""
    if weights is None or not Path(weights).is_file():
        raise CheckpointError(
            "No weights to start from: choose a checkpoint file (no trained default weights are installed)."
        )
    starting_model, _ = load_model(weights)
    chosen, validation = choose_bscans(volume[1], choice.explicit, choice.validation, choice.reviewed, choice.model)
    if not chosen:
        raise ValueError("No labelled B-scans to train on.")
    agreement, given, learner = float("nan"), config, starting_model
    if adapt:  # decided on the model as it is, with whether another axial pixel size was fitted
        images, labels, _ = volume
        device = config.device
        if axial_spacing_mm is None:  # the fit predicts the corrected B-scans as they are too: its counts decide
            learner, fit = yield from with_fitted_axial_spacing(starting_model, [(images, labels, chosen)], device)
            counts = fit.counts_by_size[fit.current_mm]
        else:
            counts = yield from agreement_counts(starting_model, images, labels, chosen, device, axial_spacing_mm)
        other_size = learner is not starting_model
        config, agreement, message = adapted_to(counts, config, explicit, other_axial_size=other_size)
        yield Notice(message, warning=not np.isfinite(agreement))  # a decision is news; too little fluid, a hint
    spacing = scan_axial_spacing(learner, axial_spacing_mm)
    result = yield from prepare_and_train(learner, volume, chosen, validation, config, None, replay, spacing)
    fitted = learner.fitted_axial_spacing_mm if learner is not starting_model else None
    return FineTuned(result, starting_model, chosen, validation, agreement, config, config != given, fitted)


def with_fitted_axial_spacing(
    model: TransUNet, corrected: Sequence[tuple[np.ndarray, np.ndarray, Sequence[int]]], device: str = "auto"
) -> Generator[Notice, None, tuple[TransUNet, AxialFit]]:
    """``model`` itself, or a copy that takes scans without an axial spacing to have the one fitted to the
    ``corrected`` B-scans (``(images, labels, chosen)`` of scans whose file gives none;
    :func:`~napari_octfluid.training.axial_fit.fit_axial_spacing`) where that agrees far better with them, with the
    fit (its counts as the scans are predicted now are the adaptive rule's agreement); a notice says so. Fine-tuning
    starts from the copy, so the new model keeps the size; the starting model is left as it is (the comparison's
    "before")."""
    fit = yield from fit_axial_spacing(model, corrected, device)
    said = fit.message()  # the size fitted, or corrections with too little fluid to fit one
    if said:
        yield Notice(said)
    if not fit.changed:
        return model, fit
    fitted = copy.deepcopy(model)
    fitted.fitted_axial_spacing_mm = fit.spacing_mm
    return fitted, fit


def adapted_to(
    counts: Confusion, config: TrainConfig, explicit: Collection[str] = (), other_axial_size: bool = False
) -> tuple[TrainConfig, float, str]:
    """The one decision of the widget and ``octfluid train --init``: ``config`` with :func:`adaptation_for`'s
    overrides for the agreement ``counts`` give (:func:`agreement_counts`, pooled over every volume) and for
    ``other_axial_size`` (another axial pixel size fitted to the corrections), except the fields named in
    ``explicit`` (what the user set), the agreement, and the sentence that says what was decided."""
    agreement = judged_agreement(counts)
    overrides = adaptation_for(agreement, other_axial_size)
    kept = sorted(key for key in overrides if key in explicit)
    overrides = {key: value for key, value in overrides.items() if key not in explicit}
    message = adaptation_message(agreement, overrides, kept, other_axial_size)
    return dataclasses.replace(config, **overrides), agreement, message


def save_fine_tuned(
    path: Path, result: TrainResult, loss_spec: str, fine_tuned_from: Path, name: str = "", device: str = ""
) -> Generator[None, None, Path]:
    """Keep's job: the fine-tuned model of ``result`` saved to ``path`` with its loss and history, in the worker
    (writing a model's weights is disk work the interface should not wait for); with a ``name``, as a model kept
    by that name for ``device`` (``model_library``: ``path`` is then ``model_library.model_path(name)``)."""
    from ..model_library import DEVICE_KEY, NAME_KEY, checked_name, describe

    yield from ()  # a generator like every job, with no step to report
    kept = {NAME_KEY: checked_name(name), DEVICE_KEY: str(device).strip()} if name else {}
    payload = dict(
        loss_spec=getattr(result.loss, "spec", loss_spec),
        loss_state=result.loss.state_dict(),
        fine_tuned_from=str(fine_tuned_from),
        history=[vars(epoch) for epoch in result.history],
        **kept,
    )
    save_checkpoint(path, result.model, **payload)
    if name:
        describe(path, payload)
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
    axial_spacing_mm: float | None = None,
) -> Generator[ComparisonProgress | Notice, None, Comparison]:
    """Predict ``images[Z, Y, X]`` (or one B-scan) with the starting and the fine-tuned model and score both per
    B-scan against the user's ``reference`` labels (Dice, Dice 1945 / Sørensen 1948: 2TP / (2TP + FP + FN), not
    counting pixels labelled ``IGNORE``), each predicted as ``inference.predict`` does for the scan's
    ``axial_spacing_mm``.

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
        events = predict(images, model, device, batch_size, axial_spacing_mm=axial_spacing_mm)
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


SAME_DICE = 0.01  # a change of mean validation Dice under this is no change (one B-scan's boundary pixels move it)
MIN_VALIDATION = 3  # fewer validation B-scans than this make the verdict a hint, and it says so


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
        if abs(after - before) < SAME_DICE:
            verdict = "about as good there: keep it if its masks need fewer corrections, else Revert."
        elif after > before:
            verdict = "better there: keep it."
        else:
            verdict = "not better there: Revert is advised (correct more B-scans and train again)."
        count = int(held_out.sum())
        caution = (
            f" Judged on {count} B-scan{'s' if count > 1 else ''} only: validate on {MIN_VALIDATION} or more to be "
            "surer."
            if count < MIN_VALIDATION
            else ""
        )
        return (
            f"Validation B-scans (not trained on): mean Dice {before:.3f} before, {after:.3f} after; "
            f"the new model is {verdict}{caution}"
        )
    trained = (used_for == TRAINED) & scored
    if not trained.any():
        return "No B-scan with annotated pixels to compare the two models on."
    return (
        f"Trained B-scans: mean Dice {dice_before[trained].mean():.3f} before, {dice_after[trained].mean():.3f} "
        "after. That says how well it learned them, not how it does on others: keep a corrected B-scan out "
        "of training ('Validate on B-scans') to judge it."
    )
