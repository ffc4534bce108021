"""Evaluation of a model against expert labels, on clean images, with Gaussian noise added (the paper's robustness
test, Darooei et al. 2023, Table 4) and under the named appearance shifts of :mod:`napari_octfluid.shifts`, and of a
second grader against the first.

Every row holds pooled Dice and Jaccard, mean B-scan Dice and the false-alarm rate: the share of B-scans without
expert fluid where any fluid is predicted (``metrics.Agreement.false_positive_rate``)."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .inference import predict, run_to_end
from .labels import FLUID, IGNORE, counts_against
from .metrics import Agreement, Confusion, concatenated
from .model import TransUNet
from .subjects import Subject

CLEAN = "clean"  # the shift column of rows on the images as they are
SHIFT_SEED = 0  # every model and every run sees the same shifted images


@dataclass(frozen=True)
class EvaluationRow:
    group: str  # which volumes: a dataset, "all", or a subject
    rater: str  # "model" or "grader 2"
    noise_sigma: float  # Gaussian noise added to the images, in their own grey levels
    agreement: Agreement
    shift: str = CLEAN  # the appearance shift applied first (napari_octfluid.shifts), or CLEAN

    def as_dict(self) -> dict:
        return {
            "group": self.group,
            "rater": self.rater,
            "shift": self.shift,
            "noise_sigma": self.noise_sigma,
            **asdict(self.agreement),
        }


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Images plus N(0, sigma^2) noise in their own intensity units, clipped to the type's range."""
    if sigma <= 0:
        return images
    noisy = images.astype(np.float32) + np.random.default_rng(seed).normal(0, sigma, images.shape).astype(np.float32)
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        return np.clip(np.rint(noisy), info.min, info.max).astype(images.dtype)
    return noisy


def subject_confusions(
    model: TransUNet,
    subjects: Iterable[Subject],
    noise_sigma: float = 0.0,
    device: str = "auto",
    batch_size: int | None = None,
    shift: str = CLEAN,
    min_lesion_pixels: int | None = None,
    axial_resampling: bool = True,
) -> list[tuple[Subject, Confusion]]:
    """Per-B-scan counts of the model against each subject's labels, with the appearance ``shift`` applied to images
    and labels together, then noise of ``noise_sigma`` added (both seeded by the subject's position, so every model
    sees the same images). Prediction is :func:`~napari_octfluid.inference.predict` with its mask rules
    (``min_lesion_pixels``: None for the model's own) and, with ``axial_resampling``, the scan's axial pixel size as
    its file would give it (:func:`axial_spacing_for`). B-scans nobody annotated (all ``IGNORE``) are left out: they
    hold nothing to count and would pass as fluid-free."""
    from .shifts import apply_shift

    counted = []
    for index, subject in enumerate(subjects):
        annotated = subject.annotated_bscans()
        images, labels = subject.images[annotated], subject.labels[annotated]
        if shift != CLEAN:
            images, labels = apply_shift(shift, images, labels, seed=SHIFT_SEED, index=index)
        spacing = axial_spacing_for(subject, images.shape, model) if axial_resampling else None
        noisy = add_noise(images, noise_sigma, seed=index)
        _, result = run_to_end(predict(noisy, model, device, batch_size, min_lesion_pixels, spacing))
        counted.append((subject, counts_against(result.labels, labels)))
    return counted


def axial_spacing_for(subject: Subject, shape: tuple[int, ...], model: TransUNet) -> float | None:
    """The axial pixel size (mm) of ``subject``'s images once shifted to ``shape``, as prediction is told it: the
    subject's own (``spacing_mm[1]``) scaled by the change in rows (:func:`~napari_octfluid.shifts.shifted_spacing`).
    A subject of unknown spacing is taken to be at the model's training pixel size, since the project's scans are
    from the training device; unshifted, it is then left unknown (None), as a file without a spacing is."""
    from .axial import model_axial_spacing
    from .shifts import shifted_spacing

    known = subject.spacing_mm[1]
    before = subject.images.shape[1]
    if shape[1] == before:
        return known
    base = known if known is not None else model_axial_spacing(model)
    return shifted_spacing((None, base, None), (1, before, 1), (1, shape[1], 1))[1]


def by_dataset(counted: list[tuple[Subject, Confusion]]) -> dict[str, list[Confusion]]:
    """The per-subject counts of :func:`subject_confusions` grouped by ``Subject.dataset``."""
    per_group: dict[str, list[Confusion]] = {}
    for subject, counts in counted:
        per_group.setdefault(subject.dataset, []).append(counts)
    return per_group


def agreement_rows(
    per_group: dict[str, list[Confusion]], noise_sigma: float, rater: str = "model", shift: str = CLEAN
) -> list[EvaluationRow]:
    """One row per group and, where there are several groups, one for all of them pooled."""
    rows = [
        EvaluationRow(group, rater, float(noise_sigma), Agreement.from_confusion(concatenated(parts)), shift)
        for group, parts in sorted(per_group.items())
    ]
    if len(per_group) > 1:
        everything = [c for parts in per_group.values() for c in parts]
        rows.append(
            EvaluationRow("all", rater, float(noise_sigma), Agreement.from_confusion(concatenated(everything)), shift)
        )
    return rows


def _rows(counted: list[tuple[Subject, Confusion]], noise_sigma: float, shift: str, per_subject: bool):
    """Rows per dataset and pooled, then (``per_subject``) one per subject whose name is not its dataset's."""
    rows = agreement_rows(by_dataset(counted), noise_sigma, shift=shift)
    if per_subject:
        rows += [
            EvaluationRow(subject.name, "model", float(noise_sigma), Agreement.from_confusion(counts), shift)
            for subject, counts in sorted(counted, key=lambda pair: pair[0].name)
            if subject.name != subject.dataset
        ]
    return rows


def evaluate(
    model: TransUNet,
    subjects: Iterable[Subject],
    noise_sigmas: Iterable[float] = (0.0,),
    device: str = "auto",
    batch_size: int | None = None,
    shifts: Iterable[str] = (),
    per_subject: bool = False,
    min_lesion_pixels: int | None = None,
    axial_resampling: bool = True,
) -> list[EvaluationRow]:
    """Rows of agreement of the model with each subject's labels, per dataset and noise level, then per appearance
    shift of :data:`~napari_octfluid.shifts.SHIFTS` (without added noise), and for all subjects together where
    there are several datasets; with ``per_subject``, also a row per subject. ``axial_resampling`` False predicts
    every scan at its own rows, whatever its axial pixel size (the behaviour before it, for comparison)."""
    subjects = list(subjects)
    settings = dict(
        device=device, batch_size=batch_size, min_lesion_pixels=min_lesion_pixels, axial_resampling=axial_resampling
    )
    rows = []
    for sigma in noise_sigmas:
        rows += _rows(subject_confusions(model, subjects, sigma, **settings), sigma, CLEAN, per_subject)
    for shift in shifts:
        rows += _rows(subject_confusions(model, subjects, 0.0, shift=shift, **settings), 0.0, shift, per_subject)
    return rows


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
    """The rows as a plain-text table; the shift column appears where some row has a shift."""
    shifted = any(row.shift != CLEAN for row in rows)
    shift_header = f" {'shift':<19}" if shifted else ""
    header = (
        f"{'group':<13} {'rater':<9}{shift_header} {'sigma':>6} {'pooled Dice':>11} {'Jaccard':>8} "
        f"{'mean B-scan Dice':>16} {'FP rate':>8} {'B-scans':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        a = row.agreement
        shift = f" {row.shift:<19}" if shifted else ""
        lines.append(
            f"{row.group:<13} {row.rater:<9}{shift} {row.noise_sigma:>6g} {a.pooled_dice:>11.4f} "
            f"{a.pooled_jaccard:>8.4f} {a.mean_bscan_dice:>16.4f} {a.false_positive_rate:>8.3f} "
            f"{a.n_bscans:>8d}"
        )
    return "\n".join(lines)


def markdown_table(rows: list[EvaluationRow]) -> str:
    """The same figures as a Markdown table (for model cards and reports); a shift column where some row has one."""
    shifted = any(row.shift != CLEAN for row in rows)
    lines = [
        "| data | rater |"
        + (" shift |" if shifted else "")
        + " noise sigma | pooled Dice | pooled Jaccard | mean B-scan Dice | FP rate | B-scans |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if shifted else ""),
    ]
    for row in rows:
        a = row.agreement
        lines.append(
            f"| {row.group} | {row.rater} |"
            + (f" {row.shift} |" if shifted else "")
            + f" {row.noise_sigma:g} | {a.pooled_dice:.3f} | "
            f"{a.pooled_jaccard:.3f} | {a.mean_bscan_dice:.3f} | {a.false_positive_rate:.2f} | {a.n_bscans} |"
        )
    return "\n".join(lines)


def robustness_table(rows: list[EvaluationRow], markdown: bool = False) -> str:
    """The model's rows without added noise, one line per shift (clean first): pooled Dice over every subject, its
    change from clean, the false-alarm rate on fluid-free B-scans, then Dice of each group (dataset or subject)."""
    model_rows = [row for row in rows if row.rater == "model" and row.noise_sigma == 0]
    shifts = list(dict.fromkeys(row.shift for row in model_rows))
    groups = [group for group in dict.fromkeys(row.group for row in model_rows) if group != "all"]
    by_key = {(row.shift, row.group): row.agreement for row in model_rows}
    overall = "all" if any(group == "all" for _, group in by_key) else (groups[0] if groups else "all")
    clean = by_key.get((CLEAN, overall))
    header = ["shift", "pooled Dice", "change", "false-alarm rate", *(f"{group} Dice" for group in groups)]
    table = []
    for shift in shifts:
        pooled = by_key.get((shift, overall))
        if pooled is None:
            continue
        change = pooled.pooled_dice - clean.pooled_dice if clean is not None else float("nan")
        cells = [shift, f"{pooled.pooled_dice:.3f}", f"{change:+.3f}", f"{pooled.false_positive_rate:.2f}"]
        cells += [f"{by_key[(shift, group)].pooled_dice:.3f}" if (shift, group) in by_key else "" for group in groups]
        table.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in table])
    widths = [max(len(str(cells[i])) for cells in [header, *table]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))
        for cells in [header, *table]
    ]
    lines.insert(1, "-" * len(lines[0]))
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
