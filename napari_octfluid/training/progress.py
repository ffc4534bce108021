"""What a training run reports: one event per step and per epoch, and its result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..losses import SegmentationLoss
from ..model import TransUNet


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
