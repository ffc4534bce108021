"""Evaluation of a model against expert labels, on clean images and with Gaussian noise added (the paper's
robustness test, seed 000 Table 4), and of a second grader against the first."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .inference import predict, run_to_end
from .metrics import Agreement, Confusion, confusion
from .model import TransUNet

IGNORE = 255


@dataclass(frozen=True)
class EvaluationRow:
    group: str  # which volumes: a dataset, "all", or a subject
    rater: str  # "model" or "grader 2"
    noise_sigma: float  # Gaussian noise added to the images, in their own grey levels
    agreement: Agreement

    def as_dict(self) -> dict:
        return {"group": self.group, "rater": self.rater, "noise_sigma": self.noise_sigma, **asdict(self.agreement)}


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Images plus N(0, sigma^2) noise in their own intensity units, clipped to the type's range."""
    if sigma <= 0:
        return images
    noisy = images.astype(np.float32) + np.random.default_rng(seed).normal(0, sigma, images.shape).astype(np.float32)
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        return np.clip(np.rint(noisy), info.min, info.max).astype(images.dtype)
    return noisy


def counts_against(prediction: np.ndarray, labels: np.ndarray) -> Confusion:
    return confusion(prediction, labels == 1, valid=labels != IGNORE)


def _concat(parts: list[Confusion]) -> Confusion:
    return Confusion(*(np.concatenate([getattr(c, name) for c in parts]) for name in ("tp", "fp", "fn")))


def model_confusions(model: TransUNet, volumes: Iterable[tuple[str, str, np.ndarray, np.ndarray]],
                     noise_sigma: float = 0.0, device: str = "auto",
                     batch_size: int | None = None) -> dict[str, list[Confusion]]:
    """Per-B-scan counts of the model against the labels, per group, with noise of ``noise_sigma`` added."""
    per_group: dict[str, list[Confusion]] = {}
    for index, (_, group, images, labels) in enumerate(volumes):
        _, result = run_to_end(predict(add_noise(images, noise_sigma, seed=index), model, device, batch_size))
        per_group.setdefault(group, []).append(counts_against(result.labels, labels))
    return per_group


def agreement_rows(per_group: dict[str, list[Confusion]], noise_sigma: float,
                   rater: str = "model") -> list[EvaluationRow]:
    """One row per group and, where there are several groups, one for all of them pooled."""
    rows = [EvaluationRow(group, rater, float(noise_sigma), Agreement.from_confusion(_concat(parts)))
            for group, parts in sorted(per_group.items())]
    if len(per_group) > 1:
        everything = [c for parts in per_group.values() for c in parts]
        rows.append(EvaluationRow("all", rater, float(noise_sigma), Agreement.from_confusion(_concat(everything))))
    return rows


def evaluate(model: TransUNet, volumes: Iterable[tuple[str, str, np.ndarray, np.ndarray]],
             noise_sigmas: Iterable[float] = (0.0,), device: str = "auto",
             batch_size: int | None = None) -> list[EvaluationRow]:
    """Rows of agreement for each group and noise level, and for all volumes together.

    ``volumes`` yields (name, group, images[Z,Y,X], labels[Z,Y,X]); labels use 1 for fluid and 255 for unknown.
    """
    volumes = list(volumes)
    return [row for sigma in noise_sigmas
            for row in agreement_rows(model_confusions(model, volumes, sigma, device, batch_size), sigma)]


def grader_confusions(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, list[Confusion]]:
    """A second grader's counts against the first, per group (unknown for either grader does not count)."""
    per_group: dict[str, list[Confusion]] = {}
    for group, second, first in pairs:
        per_group.setdefault(group, []).append(counts_against(second == 1, np.where(second == IGNORE, IGNORE, first)))
    return per_group


def grader_rows(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> list[EvaluationRow]:
    """A second grader's agreement with the first, per group: the human level a model can be held to."""
    return agreement_rows(grader_confusions(pairs), 0.0, rater="grader 2")


def format_table(rows: list[EvaluationRow]) -> str:
    header = f"{'group':<13} {'rater':<9} {'sigma':>6} {'pooled Dice':>11} {'Jaccard':>8} {'mean B-scan Dice':>16} " \
             f"{'FP rate':>8} {'B-scans':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        a = row.agreement
        lines.append(f"{row.group:<13} {row.rater:<9} {row.noise_sigma:>6g} {a.pooled_dice:>11.4f} "
                     f"{a.pooled_jaccard:>8.4f} {a.mean_bscan_dice:>16.4f} {a.false_positive_rate:>8.3f} "
                     f"{a.n_bscans:>8d}")
    return "\n".join(lines)


def markdown_table(rows: list[EvaluationRow]) -> str:
    """The same figures as a Markdown table (for model cards and reports)."""
    lines = ["| data | rater | noise sigma | pooled Dice | pooled Jaccard | mean B-scan Dice | FP rate | B-scans |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        a = row.agreement
        lines.append(f"| {row.group} | {row.rater} | {row.noise_sigma:g} | {a.pooled_dice:.3f} | "
                     f"{a.pooled_jaccard:.3f} | {a.mean_bscan_dice:.3f} | {a.false_positive_rate:.2f} | {a.n_bscans} |")
    return "\n".join(lines)


def write_csv(path: str | Path, rows: list[EvaluationRow]) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].as_dict()))
        writer.writeheader()
        writer.writerows(row.as_dict() for row in rows)
    return path
