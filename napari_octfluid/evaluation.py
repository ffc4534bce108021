"""Evaluation of a model against expert labels, on clean images and with Gaussian noise added (the paper's
robustness test, Darooei et al. 2023, Table 4), and of a second grader against the first."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .inference import predict, run_to_end
from .labels import FLUID, IGNORE, counts_against
from .metrics import Agreement, Confusion
from .model import TransUNet
from .subjects import Subject


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


def _concat(parts: list[Confusion]) -> Confusion:
    return Confusion(*(np.concatenate([getattr(c, name) for c in parts]) for name in ("tp", "fp", "fn")))


def model_confusions(
    model: TransUNet,
    subjects: Iterable[Subject],
    noise_sigma: float = 0.0,
    device: str = "auto",
    batch_size: int | None = None,
) -> dict[str, list[Confusion]]:
    """Per-B-scan counts of the model against each subject's labels, per ``Subject.dataset``, with noise of
    ``noise_sigma`` added (seeded by the subject's position, so every model sees the same noise). B-scans nobody
    annotated (all ``IGNORE``) are left out: they hold nothing to count and would pass as fluid-free."""
    per_group: dict[str, list[Confusion]] = {}
    for index, subject in enumerate(subjects):
        annotated = subject.annotated_bscans()
        images, labels = subject.images[annotated], subject.labels[annotated]
        _, result = run_to_end(predict(add_noise(images, noise_sigma, seed=index), model, device, batch_size))
        per_group.setdefault(subject.dataset, []).append(counts_against(result.labels, labels))
    return per_group


def agreement_rows(
    per_group: dict[str, list[Confusion]], noise_sigma: float, rater: str = "model"
) -> list[EvaluationRow]:
    """One row per group and, where there are several groups, one for all of them pooled."""
    rows = [
        EvaluationRow(group, rater, float(noise_sigma), Agreement.from_confusion(_concat(parts)))
        for group, parts in sorted(per_group.items())
    ]
    if len(per_group) > 1:
        everything = [c for parts in per_group.values() for c in parts]
        rows.append(EvaluationRow("all", rater, float(noise_sigma), Agreement.from_confusion(_concat(everything))))
    return rows


def evaluate(
    model: TransUNet,
    subjects: Iterable[Subject],
    noise_sigmas: Iterable[float] = (0.0,),
    device: str = "auto",
    batch_size: int | None = None,
) -> list[EvaluationRow]:
    """Rows of agreement of the model with each subject's labels, per dataset and noise level, and for all subjects
    together where there are several datasets."""
    subjects = list(subjects)
    return [
        row
        for sigma in noise_sigmas
        for row in agreement_rows(model_confusions(model, subjects, sigma, device, batch_size), sigma)
    ]


def grader_confusions(subjects: Iterable[Subject]) -> dict[str, list[Confusion]]:
    """The second grader's counts against the first, per dataset, for the subjects that have one (a pixel unknown
    to either grader does not count)."""
    per_group: dict[str, list[Confusion]] = {}
    for subject in subjects:
        second = subject.second_grader
        if second is None:
            continue
        first = np.where(second == IGNORE, IGNORE, subject.labels)
        per_group.setdefault(subject.dataset, []).append(counts_against(second == FLUID, first))
    return per_group


def grader_rows(subjects: Iterable[Subject]) -> list[EvaluationRow]:
    """A second grader's agreement with the first, per dataset: the human level a model can be held to (no rows
    where no subject has a second grader)."""
    return agreement_rows(grader_confusions(subjects), 0.0, rater="grader 2")


def format_table(rows: list[EvaluationRow]) -> str:
    header = (
        f"{'group':<13} {'rater':<9} {'sigma':>6} {'pooled Dice':>11} {'Jaccard':>8} {'mean B-scan Dice':>16} "
        f"{'FP rate':>8} {'B-scans':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        a = row.agreement
        lines.append(
            f"{row.group:<13} {row.rater:<9} {row.noise_sigma:>6g} {a.pooled_dice:>11.4f} "
            f"{a.pooled_jaccard:>8.4f} {a.mean_bscan_dice:>16.4f} {a.false_positive_rate:>8.3f} "
            f"{a.n_bscans:>8d}"
        )
    return "\n".join(lines)


def markdown_table(rows: list[EvaluationRow]) -> str:
    """The same figures as a Markdown table (for model cards and reports)."""
    lines = [
        "| data | rater | noise sigma | pooled Dice | pooled Jaccard | mean B-scan Dice | FP rate | B-scans |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        a = row.agreement
        lines.append(
            f"| {row.group} | {row.rater} | {row.noise_sigma:g} | {a.pooled_dice:.3f} | "
            f"{a.pooled_jaccard:.3f} | {a.mean_bscan_dice:.3f} | {a.false_positive_rate:.2f} | {a.n_bscans} |"
        )
    return "\n".join(lines)


def write_csv(path: str | Path, rows: list[EvaluationRow]) -> Path:
    """The rows as CSV, written whole or not at all (a full disk leaves the previous file, never an empty one)."""
    from ._atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].as_dict()))
        writer.writeheader()
        writer.writerows(row.as_dict() for row in rows)
    return path
