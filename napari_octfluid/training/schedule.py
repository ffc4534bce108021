"""The learning-rate schedule: the one-cycle shape (Smith & Topin 2019), over steps or over a time budget."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig

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
        return cosine(start, 1.0, progress / pct_start)
    return cosine(1.0, end, (progress - pct_start) / (1.0 - pct_start))


def cosine(begin: float, finish: float, fraction: float) -> float:
    return finish + (begin - finish) * (1 + math.cos(math.pi * fraction)) / 2


def one_cycle_schedule(optimiser: torch.optim.Optimizer, config: TrainConfig, total_steps: int, elapsed):
    """The one-cycle shape (:func:`one_cycle_factor`) over the run's steps, or over its time budget when one is set
    (planned over the steps alone, a 2-minute fine-tune of "1000 epochs" would end in the warm-up at a 25th of the
    learning rate asked for). Written as a LambdaLR rather than OneCycleLR, which divides by zero for runs of
    10 steps or fewer (its warm-up then has no step)."""
    budget = config.time_budget_s

    def factor(step: int) -> float:
        by_time = (elapsed() / budget if budget > 0 else 1.0) if budget is not None else 0.0
        return one_cycle_factor(max(step / total_steps, by_time))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
