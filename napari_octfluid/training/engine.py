"""The training engine: a generator that yields one event per step and per epoch and returns the result.

Drive it directly (CLI, tests, benchmarks) or from napari's ``thread_worker`` (the Fine-tune widget). The
model passed in is never modified: training works on a copy, so stopping a run leaves the old model usable.
Stopping is simply not asking for the next event; pausing is asking later.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generator

import numpy as np
import torch
from torch import nn

from .._malloc import tune_glibc_malloc
from ..devices import is_out_of_memory, resolve_device, step_down_after_out_of_memory
from ..distributed import DistributedContext
from ..events import Notice
from ..inference import forward_bscans
from ..labels import FLUID, IGNORE, counts_against, pooled_counts
from ..losses import SegmentationLoss, build_loss
from ..metrics import Confusion
from ..model import TransUNet, save_checkpoint
from .anchor import StartingPointPull, check_start_pull
from .augment import AugmentConfig, augment
from .blend import blend_weights, check_change_kept, starting_state
from .config import TrainConfig
from .data import BscanSet, random_crops
from .data_parallel import DataParallel, with_global_batchnorm, with_plain_batchnorm
from .parts import select_trainable
from .progress import EpochEnd, StepEnd, TrainResult
from .run_files import RUN_FILES, RUN_FINISHED, mark_run_finished
from .schedule import ONE_CYCLE, one_cycle_factor, one_cycle_schedule

# the public names of training, importable from here as before the engine was split
__all__ = [
    "EpochEnd",
    "ONE_CYCLE",
    "RUN_FILES",
    "RUN_FINISHED",
    "StepEnd",
    "TrainConfig",
    "TrainResult",
    "TrainingDataError",
    "evaluate_model",
    "mark_run_finished",
    "one_cycle_factor",
    "train",
]


class TrainingDataError(ValueError):
    """Training data the model cannot learn from; the message says what to do."""


def _has_fluid(data: BscanSet | None) -> bool:
    return data is not None and any((label == FLUID).any() for label in data.labels)


def evaluate_model(model: TransUNet, data: BscanSet, device: torch.device) -> Confusion:
    """Pooled confusion counts of the model on whole B-scans (labels == IGNORE do not count), through the same
    forward pass, decision threshold and padding rule as prediction, so validation figures are what the user gets."""
    predicted = (labels for labels, _ in forward_bscans(model, data, device))
    return pooled_counts(zip(predicted, data.labels))


def _batch(
    train_data: BscanSet, replay_data: BscanSet | None, config: TrainConfig, rng: np.random.Generator, batch_size: int
):
    replayed = int(round(batch_size * config.replay_fraction)) if replay_data is not None else 0
    # the replayed crops are the starting weights' own data, normalised already: only the new data is randomised
    parts = [
        random_crops(
            train_data,
            batch_size - replayed,
            config.crop,
            config.fluid_crop_fraction,
            IGNORE,
            rng,
            config.randomise,
            train_data.sampling_probabilities(config.dataset_weights),
        )
    ]
    if replayed:
        parts.append(random_crops(replay_data, replayed, config.crop, config.fluid_crop_fraction, IGNORE, rng))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _on_device(
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    augmentation: AugmentConfig | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of crops as tensors on ``device``, augmented (images ``[N, 1, H, W]``, labels ``[N, H, W]``)."""
    x = torch.from_numpy(images).unsqueeze(1).to(device)
    y = torch.from_numpy(labels).long().to(device)
    if augmentation is not None:
        x, y = augment(x, y, augmentation, IGNORE, generator)
    return x, y


class _Objective(nn.Module):
    """The model and its loss as one module, so that DistributedDataParallel averages the gradients of the loss's
    learnable parameters (the adaptive class weights) together with the model's."""

    def __init__(self, model: nn.Module, loss: SegmentationLoss) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
            logits = self.model(x)
        return self.loss(logits.float(), y), logits


def _step(
    objective: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch of crops; returns the loss and the logits. ``weight`` scales the loss for
    the gradient alone (a process's share of a global batch: data_parallel.labelled_share_weight)."""
    value, logits = objective(x, y)
    optimiser.zero_grad(set_to_none=True)
    (value if weight is None else value * weight).backward()
    optimiser.step()
    return value, logits


def _optimiser_to(optimiser: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimiser.state.values():
        for key, value in state.items():
            if torch.is_tensor(value):
                state[key] = value.to(device)


@dataclass
class _StepOutcome:
    """What one step reports: its loss, the loss's terms, and the pooled confusion counts of its crops (all of the
    global batch when several processes train)."""

    loss: float
    terms: dict[str, float]
    counts: Confusion


@dataclass
class _EpochTotals:
    """What the steps of an epoch add up to: their loss, their pooled confusion counts, their number."""

    loss: float = 0.0
    counts: Confusion = field(default_factory=lambda: Confusion(np.array(0), np.array(0), np.array(0)))
    steps: int = 0

    def add(self, outcome: _StepOutcome) -> None:
        self.loss += outcome.loss
        counts, more = self.counts, outcome.counts
        self.counts = Confusion(counts.tp + more.tp, counts.fp + more.fp, counts.fn + more.fn)
        self.steps += 1


class _Clock:
    """Seconds since the run started. Where several processes train, the readings that decide something (a time
    budget's learning rate and end) are rank 0's on all of them (:meth:`agreed`), so that they decide alike."""

    def __init__(self, parallel: DataParallel | None) -> None:
        self.parallel, self.start = parallel, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def agreed(self, seconds: float) -> float:
        return seconds if self.parallel is None else self.parallel.agreed_seconds(seconds)

    def agreed_elapsed(self) -> float:
        return self.agreed(self.elapsed())


@dataclass
class _Run:
    """What the steps and epochs of one training run share."""

    config: TrainConfig
    model: nn.Module  # the copy that learns: never the caller's model, never the DistributedDataParallel wrapper
    loss: SegmentationLoss
    stepped: nn.Module  # model and loss as one _Objective, under DistributedDataParallel when several processes train
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    clock: _Clock
    device: torch.device
    rng: np.random.Generator  # draws the crops
    generator: torch.Generator  # draws the augmentation
    start_weights: dict[str, torch.Tensor] | None  # what the result is blended with when change_kept < 1
    pull: StartingPointPull | None  # back towards the starting weights after each step, when start_pull > 0
    parallel: DataParallel | None  # this process's part when several train
    out: Path | None  # where checkpoints go: None without out_dir, and on every process but rank 0
    batch_size: int  # halved when memory runs out
    step: int = 0
    history: list[EpochEnd] = field(default_factory=list)
    best_score: float = -1.0
    stale: int = 0  # epochs since the best score
    best_path: Path | None = None
    last_path: Path | None = None

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.config.steps_per_epoch

    @property
    def reports(self) -> bool:
        """Whether this process yields events: the only one, or rank 0 of several."""
        return self.parallel is None or self.parallel.is_main


def train(
    model: TransUNet,
    train_data: BscanSet,
    val_data: BscanSet | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    loss: SegmentationLoss | None = None,
    replay_data: BscanSet | None = None,
    distributed: DistributedContext | None = None,
) -> Generator[StepEnd | EpochEnd | Notice, None, TrainResult]:
    """Train a copy of ``model`` on random crops of ``train_data``; validate on whole B-scans of ``val_data``.

    ``replay_data`` (e.g. the data the starting weights were trained on) fills ``replay_fraction`` of every
    batch, so that a few corrections do not make the model forget what it knew.

    Checkpoints (``best.pt`` by validation Dice, ``last.pt`` every epoch) go to ``out_dir`` atomically, with the
    model and training settings, the loss spec and its learnable parameters, the data summary and the history,
    marked ``finished: False`` until :func:`mark_run_finished`.

    With an active ``distributed`` context (one of several processes started by torchrun, its process group set up
    by ``DistributedContext.init``) the processes train one model with DistributedDataParallel, ``batch_size`` being
    the global batch; only rank 0 yields events and writes checkpoints. How close this comes to one process is
    said in ``training/data_parallel.py``: the same steps for pixel-mean losses, alike in expectation for the
    overlap losses.
    """
    config = config or TrainConfig()
    _check_training_data(train_data, replay_data)
    train_data.sampling_probabilities(config.dataset_weights)  # a misspelt dataset fails now, not at the first batch
    run = _set_up(model, config, loss, out_dir, distributed)
    for epoch in range(1, config.epochs + 1):
        totals = yield from _train_epoch(run, epoch, train_data, replay_data)
        produced, event = _end_epoch(run, epoch, totals, train_data, val_data)
        if run.reports:
            yield event
        if _should_stop(run, event.elapsed_s):
            return _result(run, produced, stopped_early=True)
    return _result(run, produced, stopped_early=False)


def _check_training_data(train_data: BscanSet, replay_data: BscanSet | None) -> None:
    if len(train_data) == 0:
        raise TrainingDataError("No labelled B-scans to train on: correct or accept some B-scans first.")
    if not _has_fluid(train_data) and not _has_fluid(replay_data):
        # it would learn to find no fluid anywhere: a ruined model, not a fine-tuned one
        raise TrainingDataError(
            f"None of the {len(train_data)} training B-scans holds any fluid label, so the model "
            "would learn to find no fluid at all. Label the fluid (label 1) on some B-scans, "
            "or train together with B-scans that have fluid."
        )


def _set_up(
    model: nn.Module,
    config: TrainConfig,
    loss: SegmentationLoss | None,
    out_dir: str | Path | None,
    distributed: DistributedContext | None,
) -> _Run:
    """The copy of ``model`` that learns, on its device, with its loss, optimiser and learning-rate schedule, and
    the seeded generators of crops and augmentation (the same on every process: each draws the global batch)."""
    change_kept = check_change_kept(config.change_kept)
    start_pull = check_start_pull(config.start_pull)
    device, parallel = _device_and_parallel(config, distributed)
    if device.type == "cpu":
        tune_glibc_malloc()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = copy.deepcopy(model).to(device)
    start_weights = starting_state(model) if change_kept < 1 else None
    if parallel is not None:
        model = with_global_batchnorm(model, device)
    loss = (loss or build_loss(config.loss, ignore_index=IGNORE)).to(device)
    loss.ignore_index = IGNORE
    trainable = select_trainable(model, config.trainable)  # before DDP, which syncs the parameters that learn then
    stepped = _Objective(model, loss) if parallel is None else parallel.wrap(_Objective(model, loss))
    # the same pull on every process keeps their weights equal, as the optimiser's step does
    pull = StartingPointPull(trainable, start_pull) if start_pull > 0 else None
    optimiser = torch.optim.AdamW(
        [*trainable, *loss.parameters()], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    clock = _Clock(parallel)
    return _Run(
        config=config,
        model=model,
        loss=loss,
        stepped=stepped,
        optimiser=optimiser,
        schedule=one_cycle_schedule(optimiser, config, config.epochs * config.steps_per_epoch, clock.agreed_elapsed),
        clock=clock,
        device=device,
        rng=rng,
        generator=generator,
        start_weights=start_weights,
        pull=pull,
        parallel=parallel,
        out=Path(out_dir) if out_dir and (parallel is None or parallel.is_main) else None,
        batch_size=config.batch_size,
    )


def _device_and_parallel(
    config: TrainConfig, distributed: DistributedContext | None
) -> tuple[torch.device, DataParallel | None]:
    """The device to train on, and this process's part when several train (each on its own GPU)."""
    device = resolve_device(config.device)
    if distributed is None or not distributed.active:
        return device, None
    device = distributed.device(device)
    return device, DataParallel(distributed, device, config.batch_size)


def _train_epoch(
    run: _Run, epoch: int, train_data: BscanSet, replay_data: BscanSet | None
) -> Generator[StepEnd | Notice, None, _EpochTotals]:
    """The steps of one epoch (fewer when the time budget runs out); returns their summed loss and pooled counts."""
    _set_training_mode(run.model, run.config.freeze_batchnorm)
    totals = _EpochTotals()
    for _ in range(run.config.steps_per_epoch):
        images, labels = _batch(train_data, replay_data, run.config, run.rng, run.batch_size)
        outcome = yield from _step_within_memory(run, images, labels)
        if run.pull is not None:
            run.pull(run.schedule.get_last_lr()[0])  # the rate of the step just taken
        run.schedule.step()
        run.step += 1
        totals.add(outcome)
        elapsed = run.clock.elapsed()
        lr = run.schedule.get_last_lr()[0]
        event = StepEnd(
            run.step, run.total_steps, epoch, outcome.loss, outcome.terms, lr, elapsed, _eta_s(run, elapsed)
        )
        if run.reports:
            yield event
        if _out_of_time(run, elapsed):
            break
    return totals


def _set_training_mode(model: nn.Module, freeze_batchnorm: bool) -> None:
    model.train()
    if freeze_batchnorm:  # batches of a few crops would re-estimate them badly
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def _step_within_memory(run: _Run, images: np.ndarray, labels: np.ndarray) -> Generator[Notice, None, _StepOutcome]:
    """One step on the batch, halved (at a batch of one, moved to the CPU) with a notice each time memory runs out.
    Several processes cannot do this: one cannot shrink its share alone while the others wait for it in the next
    collective, so there running out of memory ends the run with what to do."""
    while True:
        try:
            value, logits, target, labelled = _step_on_share(run, images[: run.batch_size], labels[: run.batch_size])
            break
        except (RuntimeError, torch.OutOfMemoryError) as error:
            run.optimiser.zero_grad(set_to_none=True)
            if run.parallel is not None:
                if is_out_of_memory(error):
                    raise run.parallel.out_of_memory_error() from error
                raise
            run.device, run.batch_size, message = step_down_after_out_of_memory(
                error, run.device, run.batch_size, "crop"
            )
            run.model.to(run.device)
            run.loss.to(run.device)
            _optimiser_to(run.optimiser, run.device)
            yield Notice(message)
    return _outcome(run, value, logits, target, labelled)


def _step_on_share(run: _Run, images: np.ndarray, labels: np.ndarray):
    """A step on this process's share of the batch (all of it for one process); returns the loss, the logits, the
    augmented labels and, where several processes train, this one's number of labelled pixels."""
    x, y = _on_device(images, labels, run.device, run.config.augment, run.generator)
    if run.parallel is None:
        return (*_step(run.stepped, run.optimiser, x, y), y, None)
    # the global batch was augmented as one process augments it; each process then keeps its share
    x, y = run.parallel.local_share(x), run.parallel.local_share(y)
    weight, labelled = run.parallel.share_weight(y, IGNORE)
    return (*_step(run.stepped, run.optimiser, x, y, weight), y, labelled)


def _outcome(run: _Run, value: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, labelled) -> _StepOutcome:
    predicted, target = logits.detach().argmax(dim=1).cpu().numpy(), target.cpu().numpy()
    # against the augmented labels: a flipped or rotated crop is scored against its flipped labels
    counts = counts_against(predicted, target).pooled()
    loss, terms = float(value.detach()), run.loss.terms()
    if run.parallel is not None:
        loss, terms, counts = run.parallel.reduce_step(loss, terms, counts, labelled)
    return _StepOutcome(loss, terms, counts)


def _eta_s(run: _Run, elapsed: float) -> float:
    remaining = elapsed / run.step * (run.total_steps - run.step)
    if run.config.time_budget_s is not None:
        remaining = min(remaining, max(run.config.time_budget_s - elapsed, 0.0))
    return remaining


def _out_of_time(run: _Run, elapsed: float) -> bool:
    return run.config.time_budget_s is not None and run.clock.agreed(elapsed) >= run.config.time_budget_s


def _end_epoch(
    run: _Run, epoch: int, totals: _EpochTotals, train_data: BscanSet, val_data: BscanSet | None
) -> tuple[nn.Module, EpochEnd]:
    """Validate what the epoch produced, keep the best score, write the checkpoints; returns the model and event."""
    produced = _result_model(run)
    val = _validate(run, produced, val_data)
    improved = _keep_score(run, float(val.dice) if val is not None else float(totals.counts.dice))
    elapsed = run.clock.elapsed()
    event = EpochEnd(
        epoch,
        run.config.epochs,
        totals.loss / totals.steps,
        float(totals.counts.dice),
        float(totals.counts.jaccard),
        None if val is None else float(val.dice),
        None if val is None else float(val.jaccard),
        run.schedule.get_last_lr()[0],
        elapsed,
        elapsed / run.step * (run.total_steps - run.step),
        improved,
        run.loss.learnable_parameters(),
    )
    run.history.append(event)
    if run.out is not None:
        _save_checkpoints(run, produced, epoch, improved, train_data, val_data)
    return produced, event


def _result_model(run: _Run) -> nn.Module:
    """What the run has produced so far: the trained weights, or with ``change_kept`` < 1 their blend with the
    starting ones (validated, saved and returned alike, so the figures describe the model the user gets)."""
    if run.start_weights is None:
        return run.model.eval()
    return blend_weights(run.start_weights, run.model, run.config.change_kept).eval()


def _validate(run: _Run, produced: nn.Module, val_data: BscanSet | None) -> Confusion | None:
    """Pooled counts on the validation B-scans; several processes each take a share of them and add up."""
    if val_data is None or not len(val_data):
        return None
    if run.parallel is None:
        return evaluate_model(produced, val_data, run.device)
    return run.parallel.reduce_confusion(evaluate_model(produced, run.parallel.shard(val_data), run.device))


def _keep_score(run: _Run, score: float) -> bool:
    """Whether ``score`` beats the best so far (then it becomes the best); counts the epochs without one."""
    improved = score > run.best_score
    if improved:
        run.best_score, run.stale = score, 0
    else:
        run.stale += 1
    return improved


def _save_checkpoints(
    run: _Run, produced: nn.Module, epoch: int, improved: bool, train_data: BscanSet, val_data: BscanSet | None
) -> None:
    # "finished": False until the run's owner stores its result (calibration included) and calls
    # mark_run_finished: a run killed before then never leaves a best.pt that looks final
    extra = {
        "loss_spec": getattr(run.loss, "spec", run.config.loss),
        "loss_state": run.loss.state_dict(),
        "train_config": run.config.to_dict(),
        "data": {
            "train": train_data.summary(),
            "validation": val_data.summary() if val_data is not None else None,
        },
        "history": [asdict(e) for e in run.history],
        "epoch": epoch,
        RUN_FINISHED: False,
    }
    run.last_path = save_checkpoint(run.out / "last.pt", produced, **extra)
    if improved:
        run.best_path = save_checkpoint(run.out / "best.pt", produced, **extra)


def _should_stop(run: _Run, elapsed: float) -> bool:
    """The stopping rule after an epoch: the time budget is spent, or validation has not improved for
    ``early_stopping_patience`` epochs."""
    patience = run.config.early_stopping_patience
    return _out_of_time(run, elapsed) or (patience is not None and run.stale >= patience)


def _result(run: _Run, produced: nn.Module, stopped_early: bool) -> TrainResult:
    if run.parallel is not None:  # the model returned works the same without a process group
        produced = with_plain_batchnorm(produced)
    return TrainResult(produced, run.loss, run.history, run.best_path, run.last_path, stopped_early)
