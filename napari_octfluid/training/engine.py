"""The training engine: a generator that yields one event per step and per epoch and returns the result.

Drive it directly (CLI, tests, benchmarks) or from napari's ``thread_worker`` (the Fine-tune widget). The
model passed in is never modified: training works on a copy, so stopping a run leaves the old model usable.
Stopping is simply not asking for the next event; pausing is asking later.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generator

import numpy as np
import torch

from .._malloc import tune_glibc_malloc
from ..devices import resolve_device, step_down_after_out_of_memory
from ..events import Notice
from ..inference import forward
from ..labels import IGNORE
from ..losses import SegmentationLoss, build_loss
from ..metrics import Confusion, confusion
from ..model import TransUNet, load_model, save_checkpoint, update_checkpoint
from .augment import AugmentConfig, augment
from .blend import blend_weights, check_change_kept, starting_state
from .data import BscanSet, random_crops
from .parts import select_trainable


class TrainingDataError(ValueError):
    """Training data the model cannot learn from; the message says what to do."""


def _has_fluid(data: BscanSet | None) -> bool:
    return data is not None and any((label == 1).any() for label in data.labels)


# the checkpoint field that says the run which wrote it ended and stored its result; absent in older checkpoints
RUN_FINISHED = "finished"
RUN_FILES = ("best.pt", "last.pt")  # what a run writes into its out_dir


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved inside its checkpoints."""

    loss: str = "composite"
    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 8
    crop: tuple[int, int] = (256, 256)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    fluid_crop_fraction: float = 0.6
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    early_stopping_patience: int | None = None  # epochs without a better validation Dice
    replay_fraction: float = 0.5  # share of each batch drawn from ``replay_data`` when it is given
    freeze_batchnorm: bool = False  # keep the starting model's normalisation statistics (fine-tuning on few B-scans)
    trainable: str = "all"  # the parts of the network that learn (training/parts.py: TRAINABLE_PARTS)
    change_kept: float = 1.0  # share of the change from the starting weights the result keeps (WiSE-FT, blend.py)
    time_budget_s: float | None = None  # stop after this much training time (benchmarks, quick fine-tunes)
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict:
        values = asdict(self)
        values["crop"] = list(self.crop)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        if "augment" in values and isinstance(values["augment"], dict):
            values["augment"] = AugmentConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in values["augment"].items()}
            )
        if "crop" in values:
            values["crop"] = tuple(values["crop"])
        return cls(**values)


@dataclass(frozen=True)
class StepEnd:
    step: int
    total_steps: int
    epoch: int
    loss: float
    terms: dict
    learning_rate: float
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    train_dice: float
    train_jaccard: float
    val_dice: float | None
    val_jaccard: float | None
    learning_rate: float
    elapsed_s: float
    eta_s: float
    improved: bool
    loss_parameters: dict


@dataclass
class TrainResult:
    model: TransUNet
    loss: SegmentationLoss
    history: list[EpochEnd]
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    stopped_early: bool


def evaluate_model(model: TransUNet, data: BscanSet, device: torch.device) -> Confusion:
    """Pooled confusion counts of the model on whole B-scans (labels == IGNORE do not count), through the same
    forward pass, decision threshold and padding rule as prediction, so validation figures are what the user gets."""
    model.eval()
    tp = fp = fn = 0
    outside = getattr(data, "outside", None)
    for index, (image, label) in enumerate(zip(data.images, data.labels)):
        predicted = forward(model, image[None], device, None if outside is None else outside[index][None])[0][0]
        counts = confusion(predicted, label == 1, valid=label != IGNORE)
        tp, fp, fn = tp + int(counts.tp.sum()), fp + int(counts.fp.sum()), fn + int(counts.fn.sum())
    return Confusion(np.array(tp), np.array(fp), np.array(fn))


def _batch(
    train_data: BscanSet, replay_data: BscanSet | None, config: TrainConfig, rng: np.random.Generator, batch_size: int
):
    replayed = int(round(batch_size * config.replay_fraction)) if replay_data is not None else 0
    parts = [random_crops(train_data, batch_size - replayed, config.crop, config.fluid_crop_fraction, IGNORE, rng)]
    if replayed:
        parts.append(random_crops(replay_data, replayed, config.crop, config.fluid_crop_fraction, IGNORE, rng))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _step(
    model,
    loss,
    optimiser,
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    augmentation: AugmentConfig | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """One optimisation step on a batch of crops; returns the loss, the logits and the (augmented) labels."""
    x = torch.from_numpy(images).unsqueeze(1).to(device)
    y = torch.from_numpy(labels).long().to(device)
    if augmentation is not None:
        x, y = augment(x, y, augmentation, IGNORE, generator)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(x)
    value = loss(logits.float(), y)
    optimiser.zero_grad(set_to_none=True)
    value.backward()
    optimiser.step()
    return value, logits, y


def _optimiser_to(optimiser: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimiser.state.values():
        for key, value in state.items():
            if torch.is_tensor(value):
                state[key] = value.to(device)


ONE_CYCLE = dict(pct_start=0.1, div_factor=25.0, final_div_factor=1e4)  # OneCycleLR's defaults, warm-up 10 %


def one_cycle_factor(
    progress: float,
    pct_start: float = ONE_CYCLE["pct_start"],
    div_factor: float = ONE_CYCLE["div_factor"],
    final_div_factor: float = ONE_CYCLE["final_div_factor"],
) -> float:
    """The learning rate as a fraction of its peak at ``progress`` (0 to 1) through a run: the cosine one-cycle
    shape of ``torch.optim.lr_scheduler.OneCycleLR`` (Smith & Topin 2019), written out because OneCycleLR only
    counts steps and a run that a time budget ends must follow the clock."""
    progress = min(max(progress, 0.0), 1.0)
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    if progress < pct_start:  # warm-up from start to the peak
        return _cosine(start, 1.0, progress / pct_start)
    return _cosine(1.0, end, (progress - pct_start) / (1.0 - pct_start))


def _cosine(begin: float, finish: float, fraction: float) -> float:
    return finish + (begin - finish) * (1 + math.cos(math.pi * fraction)) / 2


def _schedule(optimiser: torch.optim.Optimizer, config: TrainConfig, total_steps: int, elapsed):
    """The one-cycle shape (:func:`one_cycle_factor`) over the run's steps, or over its time budget when one is set
    (planned over the steps alone, a 2-minute fine-tune of "1000 epochs" would end in the warm-up at a 25th of the
    learning rate asked for). Written as a LambdaLR rather than OneCycleLR, which divides by zero for runs of
    10 steps or fewer (its warm-up then has no step)."""
    budget = config.time_budget_s

    def factor(step: int) -> float:
        by_time = (elapsed() / budget if budget > 0 else 1.0) if budget is not None else 0.0
        return one_cycle_factor(max(step / total_steps, by_time))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def train(
    model: TransUNet,
    train_data: BscanSet,
    val_data: BscanSet | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    loss: SegmentationLoss | None = None,
    replay_data: BscanSet | None = None,
) -> Generator[StepEnd | EpochEnd | Notice, None, TrainResult]:
    """Train a copy of ``model`` on random crops of ``train_data``; validate on whole B-scans of ``val_data``.

    ``replay_data`` (e.g. the data the starting weights were trained on) fills ``replay_fraction`` of every
    batch, so that a few corrections do not make the model forget what it knew.

    Checkpoints (``best.pt`` by validation Dice, ``last.pt`` every epoch) go to ``out_dir`` atomically, with the
    model and training settings, the loss spec and its learnable parameters, the data summary and the history,
    marked ``finished: False`` until :func:`mark_run_finished`.
    """
    config = config or TrainConfig()
    if len(train_data) == 0:
        raise TrainingDataError("No labelled B-scans to train on: correct or accept some B-scans first.")
    if not _has_fluid(train_data) and not _has_fluid(replay_data):
        # it would learn to find no fluid anywhere: a ruined model, not a fine-tuned one
        raise TrainingDataError(
            f"None of the {len(train_data)} training B-scans holds any fluid label, so the model "
            "would learn to find no fluid at all. Label the fluid (label 1) on some B-scans, "
            "or train together with B-scans that have fluid."
        )
    change_kept = check_change_kept(config.change_kept)
    device = resolve_device(config.device)
    if device.type == "cpu":
        tune_glibc_malloc()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = copy.deepcopy(model).to(device)
    start_weights = starting_state(model) if change_kept < 1 else None

    def result_model() -> TransUNet:
        """What the run has produced so far: the trained weights, or with ``change_kept`` < 1 their blend with the
        starting ones (validated, saved and returned alike, so the figures describe the model the user gets)."""
        trained = model if start_weights is None else blend_weights(start_weights, model, change_kept)
        return trained.eval()

    loss = (loss or build_loss(config.loss, ignore_index=IGNORE)).to(device)
    loss.ignore_index = IGNORE
    optimiser = torch.optim.AdamW(
        [*select_trainable(model, config.trainable), *loss.parameters()],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    total_steps = config.epochs * config.steps_per_epoch
    start = time.perf_counter()
    schedule = _schedule(optimiser, config, total_steps, lambda: time.perf_counter() - start)
    out = Path(out_dir) if out_dir else None
    history: list[EpochEnd] = []
    best_score, best_path, last_path, stale = -1.0, None, None, 0
    batch_size = config.batch_size  # halved when memory runs out
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        if config.freeze_batchnorm:  # batches of a few crops would re-estimate them badly
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        epoch_loss, counts, epoch_steps = 0.0, Confusion(np.array(0), np.array(0), np.array(0)), 0
        for _ in range(config.steps_per_epoch):
            images, labels = _batch(train_data, replay_data, config, rng, batch_size)
            while True:
                try:
                    value, logits, target = _step(
                        model,
                        loss,
                        optimiser,
                        images[:batch_size],
                        labels[:batch_size],
                        device,
                        config.augment,
                        generator,
                    )
                    break
                except (RuntimeError, torch.OutOfMemoryError) as error:
                    optimiser.zero_grad(set_to_none=True)
                    device, batch_size, message = step_down_after_out_of_memory(error, device, batch_size, "crop")
                    model.to(device)
                    loss.to(device)
                    _optimiser_to(optimiser, device)
                    yield Notice(message)
            schedule.step()
            step += 1
            epoch_steps += 1
            epoch_loss += float(value.detach())
            predicted, target = logits.detach().argmax(dim=1).cpu().numpy(), target.cpu().numpy()
            # against the augmented labels: a flipped or rotated crop is scored against its flipped labels
            batch = confusion(predicted, target == 1, valid=target != IGNORE).pooled()
            counts = Confusion(counts.tp + batch.tp, counts.fp + batch.fp, counts.fn + batch.fn)
            elapsed = time.perf_counter() - start
            remaining = elapsed / step * (total_steps - step)
            if config.time_budget_s is not None:
                remaining = min(remaining, max(config.time_budget_s - elapsed, 0.0))
            yield StepEnd(
                step,
                total_steps,
                epoch,
                float(value.detach()),
                loss.terms(),
                schedule.get_last_lr()[0],
                elapsed,
                remaining,
            )
            if config.time_budget_s is not None and elapsed >= config.time_budget_s:
                break
        produced = result_model()
        val = evaluate_model(produced, val_data, device) if val_data is not None and len(val_data) else None
        score = float(val.dice) if val is not None else float(counts.dice)
        improved = score > best_score
        if improved:
            best_score, stale = score, 0
        else:
            stale += 1
        elapsed = time.perf_counter() - start
        event = EpochEnd(
            epoch,
            config.epochs,
            epoch_loss / epoch_steps,
            float(counts.dice),
            float(counts.jaccard),
            None if val is None else float(val.dice),
            None if val is None else float(val.jaccard),
            schedule.get_last_lr()[0],
            elapsed,
            elapsed / step * (total_steps - step),
            improved,
            loss.learnable_parameters(),
        )
        history.append(event)
        if out is not None:
            # "finished": False until the run's owner stores its result (calibration included) and calls
            # mark_run_finished: a run killed before then never leaves a best.pt that looks final
            extra = {
                "loss_spec": getattr(loss, "spec", config.loss),
                "loss_state": loss.state_dict(),
                "train_config": config.to_dict(),
                "data": {
                    "train": train_data.summary(),
                    "validation": val_data.summary() if val_data is not None else None,
                },
                "history": [asdict(e) for e in history],
                "epoch": epoch,
                RUN_FINISHED: False,
            }
            last_path = save_checkpoint(out / "last.pt", produced, **extra)
            if improved:
                best_path = save_checkpoint(out / "best.pt", produced, **extra)
        yield event
        out_of_time = config.time_budget_s is not None and elapsed >= config.time_budget_s
        if out_of_time or (config.early_stopping_patience is not None and stale >= config.early_stopping_patience):
            return TrainResult(produced, loss, history, best_path, last_path, True)
    return TrainResult(produced, loss, history, best_path, last_path, False)


def mark_run_finished(*paths: str | Path | None) -> None:
    """Store ``finished: True`` in the checkpoints a run wrote, once everything the run produces (the calibrated
    threshold included) is in them; until then they say ``finished: False``, so that a run killed on the way
    (even during calibration) leaves checkpoints that do not pass for final ones."""
    for path in paths:
        if path is not None:
            update_checkpoint(path, load_model(path)[0], **{RUN_FINISHED: True})
