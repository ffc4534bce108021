"""Cross-validation by subject (Darooei et al. 2023 used 5 folds): train on k-1 folds, predict the held-out fold,
and pool the held-out predictions of all folds into the figures of the model card.

Each fold is trained exactly as a recipe says, from scratch, with no validation set: the held-out subjects must
not choose the epoch or the threshold, so the last epoch is kept and the threshold is calibrated on the fold's
training B-scans. A recipe that trains on from another's weights (a second stage, as the shipped weights'
``recipes/robust_weights.toml`` after ``recipes/default_weights.toml``) is cross-validated from that recipe's own
cross-validation: each fold starts from the first stage's model of the same fold (``init_from``), which never saw
the fold's held-out subjects either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generator

from ..evaluation import CLEAN, EvaluationRow, agreement_rows, by_dataset, grader_rows, subject_confusions
from ..metrics import Confusion
from ..model import TransUNet, TransUNetConfig, load_model, save_checkpoint
from ..subjects import Subject
from .calibrate import calibrate_model
from .data import BscanSet
from .engine import EpochEnd, StepEnd, TrainConfig, train


def subject_folds(names: list[str], k: int) -> list[list[str]]:
    """``k`` folds of subject names, each dataset (the prefix before ``_``) dealt round-robin across the folds
    so that every fold holds a share of every dataset; the deal continues where the previous dataset stopped,
    which keeps fold sizes within one of each other."""
    if not 2 <= k <= len(names):
        raise ValueError(f"cannot make {k} folds of {len(names)} subjects: choose k between 2 and {len(names)}.")
    folds: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for dataset in sorted({name.split("_")[0] for name in names}):
        for name in sorted(n for n in names if n.split("_")[0] == dataset):
            folds[position % k].append(name)
            position += 1
    return folds


@dataclass(frozen=True)
class FoldStarted:
    fold: int
    folds: int
    held_out: list[str]


@dataclass(frozen=True)
class FoldEnd:
    fold: int
    folds: int
    held_out: list[str]
    threshold: float
    train_minutes: float
    rows: list[EvaluationRow]  # this fold's held-out subjects, clean images


@dataclass
class CrossValidation:
    rows: list[EvaluationRow]  # held-out predictions of all folds pooled, per dataset and noise level; grader 2
    folds: list[FoldEnd]


def _previous_fold(fold_dir: Path | None, held_out: list[str]) -> tuple[TransUNet, float] | None:
    """A fold already trained in ``fold_dir`` on the same split, with its training minutes."""
    path = fold_dir / "final.pt" if fold_dir is not None else None
    if path is None or not path.exists():
        return None
    model, payload = load_model(path)
    if list(payload.get("held_out", [])) != list(held_out):
        return None
    return model, float(payload.get("train_minutes", float("nan")))


class FirstStageError(ValueError):
    """A second stage's ``init_from`` lacks a fold it needs, or holds folds of other subjects or another model."""


def first_stage_of_fold(init_from: str | Path, index: int, held_out: list[str], model_config: TransUNetConfig):
    """The model fold ``index`` of another cross-validation (``init_from``, its ``--out``) ended with, to train on
    from; refused (:class:`FirstStageError`, saying what to do) where that fold is missing, held out other subjects,
    or is a model of another configuration."""
    path = Path(init_from) / f"fold_{index}" / "final.pt"
    if not path.is_file():
        raise FirstStageError(f"{path} does not exist: cross-validate fold {index} of the first stage into {init_from}")
    model, payload = load_model(path)
    if list(payload.get("held_out", [])) != list(held_out):
        raise FirstStageError(
            f"{path} held out {', '.join(payload.get('held_out', [])) or 'no subjects'}, but fold {index} here holds "
            f"out {', '.join(held_out)}: cross-validate both stages over the same subjects and number of folds."
        )
    if model.config != model_config:
        raise FirstStageError(f"{path} holds a model of another configuration than the recipe's [model].")
    return model


def train_fold(
    subjects: list[Subject],
    held_out: list[str],
    index: int,
    model_config: TransUNetConfig,
    config: TrainConfig,
    fold_dir: Path | None = None,
    start: TransUNet | None = None,
) -> Generator[StepEnd | EpochEnd, None, tuple[TransUNet, float]]:
    """Train fold ``index`` (1-based: its seed is the recipe's plus ``index``) on every subject not held out, from
    scratch or on from ``start`` (a first stage's model of this fold), calibrate its threshold on its training
    B-scans, and save it as ``fold_dir/final.pt``; returns the model and the minutes it took."""
    training = BscanSet.from_subjects([s for s in subjects if s.name not in held_out])
    started = time.perf_counter()
    model = TransUNet(model_config) if start is None else start
    result = yield from train(model, training, None, replace(config, seed=config.seed + index), out_dir=fold_dir)
    model = result.model.cpu()
    calibrate_model(model, training)
    minutes = (time.perf_counter() - started) / 60
    if fold_dir is not None:
        save_checkpoint(fold_dir / "final.pt", model, held_out=held_out, train_minutes=minutes)
    return model, minutes


def cross_validate(
    subjects: list[Subject],
    k: int,
    model_config: TransUNetConfig,
    config: TrainConfig,
    noise_sigmas: tuple[float, ...] = (0.0,),
    out_dir: str | Path | None = None,
    batch_size: int | None = None,
    reuse: bool = False,
    only: tuple[int, ...] | None = None,
    shifts: tuple[str, ...] = (),
    init_from: str | Path | None = None,
) -> Generator[FoldStarted | StepEnd | EpochEnd | FoldEnd, None, CrossValidation]:
    """Train and test ``k`` folds of ``subjects``; yields the training events of each fold between a
    ``FoldStarted`` and a ``FoldEnd``, and returns the pooled held-out figures: clean at each of ``noise_sigmas``,
    then under each appearance shift of ``shifts`` (:mod:`~napari_octfluid.shifts`, without noise).
    ``init_from``: the ``out_dir`` of a first stage's cross-validation of the same subjects and folds; each fold
    then trains on from that fold's model (:func:`first_stage_of_fold`, all checked before any training).

    With ``reuse``, a fold whose ``final.pt`` is already in ``out_dir`` (and held out the same subjects) is
    tested again without training: an interrupted run resumes, and a finished one is re-evaluated. ``only``
    (fold numbers from 1) trains and tests those folds alone, so that folds can run in parallel processes; a
    later ``reuse`` run pools them all."""
    by_name = {s.name: s for s in subjects}
    folds = subject_folds(list(by_name), k)
    conditions = [(float(sigma), CLEAN) for sigma in noise_sigmas] + [(0.0, shift) for shift in shifts]
    pooled: dict[tuple[float, str], dict[str, list[Confusion]]] = {condition: {} for condition in conditions}
    ends = []
    if only is not None and not set(only) <= set(range(1, k + 1)):
        raise ValueError(f"folds are numbered 1 to {k}; {sorted(set(only))} asked for")
    chosen = [(index, held_out) for index, held_out in enumerate(folds, start=1) if only is None or index in only]
    starts = {
        index: None if init_from is None else first_stage_of_fold(init_from, index, held_out, model_config)
        for index, held_out in chosen
    }
    for index, held_out in chosen:
        yield FoldStarted(index, k, held_out)
        fold_dir = Path(out_dir) / f"fold_{index}" if out_dir else None
        previous = _previous_fold(fold_dir, held_out) if reuse else None
        if previous is not None:
            model, minutes = previous
        else:
            model, minutes = yield from train_fold(
                subjects, held_out, index, model_config, config, fold_dir, start=starts.pop(index)
            )
        fold_rows = []
        held_out_subjects = [by_name[name] for name in held_out]
        for sigma, shift in conditions:
            per_group = by_dataset(
                subject_confusions(model, held_out_subjects, sigma, config.device, batch_size, shift=shift)
            )
            for group, parts in per_group.items():
                pooled[sigma, shift].setdefault(group, []).extend(parts)
            if (sigma, shift) == conditions[0]:
                fold_rows = [
                    replace(row, group=f"fold {index} {row.group}") for row in agreement_rows(per_group, sigma)
                ]
        end = FoldEnd(index, k, held_out, model.decision_threshold, minutes, fold_rows)
        ends.append(end)
        yield end
    rows = [row for sigma, shift in conditions for row in agreement_rows(pooled[sigma, shift], sigma, shift=shift)]
    rows += grader_rows(subjects)
    return CrossValidation(rows, ends)
