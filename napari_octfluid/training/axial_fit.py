"""The axial pixel size of a scan whose file gives none, fitted to the user's corrections (issue 19).

A model sees depth in pixels (:mod:`napari_octfluid.axial`): a scan from a device with half Spectralis' axial pixel
size (a Cirrus: 1024 rows over 2 mm) shows every cyst twice as tall, and the model, told nothing, calls the speckled
layers fluid. Where the file gives the spacing, prediction resamples the scan to the model's pixel size; TIFF exports
and some vendor files (Heidelberg ``.e2e``) give none, and octfluid never guesses one.

The user's corrections are evidence, though: the model's masks of the corrected B-scans, predicted at a few axial
pixel sizes, agree with them best near the scan's own. On four subjects the shipped weights never trained on (UMN
12-14, Duke 5), made to look like an unaveraged scan or a Cirrus (twice the rows, spacing unknown), the expert's
masks of 3 B-scans agreed best at half the model's pixel size on all eight (Dice 0.69-0.91 there, 0.28-0.74 as they
were), and at the model's own on the clean scans. With the correction benchmark's robot correcting instead (3
B-scans each, until Dice 0.9 against the expert), the fit chose half the model's size on all 12 scans with twice the
rows (unaveraged, Cirrus-like, axial_x2), twice it on the 4 with half the rows, and the scan's own rows on the 8
clean or Topcon-like ones; the other B-scans of the shifted scans went from Dice 0.56 to 0.82 on average before any
training. Milder shifts fool it: on the 4 scans with 1.41 times the rows it kept the rows, where 0.71 would have
given +0.02 to +0.17 (docs/correction_benchmark.md, 2026-12-02). No library fits a scale this way, so it is written
here.

Only fine-tuning's adaptive step fits (``training.finetune``: the widget's *Adapt* and ``octfluid train --init``'s
``--adapt``), only for scans whose file gives no axial spacing. The fitted size is used to train, and the model keeps
it (``TransUNet.fitted_axial_spacing_mm``, in its checkpoint): prediction takes scans without a spacing to have it
(:func:`~napari_octfluid.axial.scan_axial_spacing`). It is never shown or used as a physical size: Quantify still asks
for the scan's spacing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Sequence

import numpy as np

from ..axial import TOLERANCE, model_axial_spacing, scan_axial_spacing
from ..events import Notice
from ..metrics import Confusion, concatenated
from ..model import TransUNet

# the scan's axial pixel size tried, as a ratio to the model's: 0.5 a Cirrus (1.96 um against Spectralis' 3.87 um),
# about 0.7 a Topcon (2.6 um), 2 the robustness suite's coarsest (axial_x0.5); steps of a factor sqrt(2), as far
# apart as the model's tolerance of scale allows it to tell them (clean scans: the next ratio 0.03-0.06 Dice lower)
AXIAL_RATIOS = (0.5, 0.71, 1.0, 1.41, 2.0)
# another axial pixel size must beat the one prediction uses now by this much pooled Dice: the clean scans' next best
# ratio came 0.025-0.062 below their own, the shifted scans' own 0.19-0.44 above the unresampled one
FIT_MARGIN = 0.05
# of the sizes that beat it, the finest within this pooled Dice of the best wins: three corrected B-scans tell a size
# too coarse from the true one poorly and one too fine well (clean scans against the expert's masks: sqrt(2) times
# coarser 0.025-0.062 below the true size, sqrt(2) times finer 0.07-0.39 below), so a near tie leans coarse. On 12
# scans of UMN 12-14 and Duke 5 with twice the rows (unaveraged, Cirrus-like, axial_x2), the robot's corrections put
# 0.71 first on six, 0.5 (the true ratio) 0.001-0.023 behind, and 0.5 lifted those scans' other B-scans by 0.03-0.17
# Dice more; clean, Topcon-like and half-the-rows scans: unchanged (docs/correction_benchmark.md, 2026-12-02)
FIT_TIE = 0.03


@dataclass(frozen=True)
class AxialFit:
    """What the fit found: ``spacing_mm``, the axial pixel size to use (None: keep ``current_mm``, what prediction
    takes the scan to have now, None for its own rows), and the pooled counts of the model's masks against the
    corrections at each size tried (``counts_by_size``, mm or None -> counts)."""

    spacing_mm: float | None
    current_mm: float | None
    counts_by_size: dict[float | None, Confusion] = field(default_factory=dict)

    @property
    def dice(self) -> dict[float | None, float]:
        """Pooled Dice at each size tried (NaN where the corrections hold too little fluid to judge)."""
        from .finetune import judged_agreement

        return {size: judged_agreement(counts) for size, counts in self.counts_by_size.items()}

    @property
    def counts(self) -> Confusion:
        """The counts at the size used (:attr:`used_mm`)."""
        return self.counts_by_size[self.used_mm]

    @property
    def judged(self) -> bool:
        """Whether the corrections held enough fluid to judge any size (``finetune.judged_agreement``)."""
        return bool(np.isfinite(self.dice.get(self.current_mm, float("nan"))))

    @property
    def changed(self) -> bool:
        return self.spacing_mm is not None and self.spacing_mm != self.current_mm

    @property
    def used_mm(self) -> float | None:
        """The axial pixel size fine-tuning and the new model use for the scan (None: its own rows)."""
        return self.spacing_mm if self.changed else self.current_mm

    def message(self) -> str:
        """The fit in a sentence for the user, when it changed anything or could not judge ("" otherwise)."""
        if not self.judged:
            # B-scans corrected by erasing false fluid only (the review queue's first ones may be such B-scans on a
            # scan of another device: the correction benchmark with --choose queue, docs/correction_benchmark.md)
            return (
                "The scan's file gives no axial pixel size, and your corrected B-scans hold too little fluid to tell "
                "which one fits them: fine-tuning takes the scan as prediction does now. If the masks look wrong on "
                "a scan from another device, correct a B-scan with fluid too and train again."
            )
        if not self.changed:
            return ""
        now = "its own rows" if self.current_mm is None else f"{self.current_mm * 1000:.2f} um per row"
        dice = self.dice
        return (
            f"The scan's file gives no axial pixel size, and the model agrees far better with your corrections "
            f"taking it as {self.spacing_mm * 1000:.2f} um per row (Dice {dice[self.spacing_mm]:.2f}, against "
            f"{dice[self.current_mm]:.2f} at {now}): fine-tuning uses that, and so will the new model for "
            "scans without a spacing. Physical figures still need the scan's real spacing (Quantify)."
        )


def fit_axial_spacing(
    model: TransUNet,
    corrected: Sequence[tuple[np.ndarray, np.ndarray, Sequence[int]]],
    device: str = "auto",
    ratios: Sequence[float] = AXIAL_RATIOS,
) -> Generator[Notice, None, AxialFit]:
    """The axial pixel size at which ``model``'s masks agree best with the user's corrections, for scans whose file
    gives none: ``corrected`` holds ``(images, labels, chosen B-scans)`` of each such scan, pooled (one device).

    Each size tried is the model's axial pixel size times one of ``ratios``, beside the one prediction uses now (the
    scan's own rows, or ``model.fitted_axial_spacing_mm``); another wins only when its pooled Dice is
    :data:`FIT_MARGIN` higher, and of those that do, the finest within :data:`FIT_TIE` of the best. Corrections too
    small to judge (``finetune.judged_agreement``) change nothing. Predicts the chosen B-scans once per size (seconds
    for three B-scans)."""
    from .finetune import agreement_counts

    current = scan_axial_spacing(model, None)
    at = model_axial_spacing(model)
    tried: list[float | None] = [current]
    for ratio in ratios:
        spacing = round(at * ratio, 7)
        same_rows = current is None and abs(ratio - 1.0) <= TOLERANCE  # predicted as it is: the current size
        if not same_rows and spacing not in tried:
            tried.append(spacing)
    counts: dict[float | None, Confusion] = {}
    for spacing in tried:
        parts = []
        for images, labels, chosen in corrected:
            parts.append((yield from agreement_counts(model, images, labels, chosen, device, spacing)))
        counts[spacing] = concatenated(parts).pooled()
    dice = AxialFit(None, current, counts).dice
    judged = [spacing for spacing in tried if np.isfinite(dice[spacing])]
    if current not in judged:
        return AxialFit(None, current, counts)
    best = max(dice[spacing] for spacing in judged)
    winners = [size for size in judged if dice[size] >= max(dice[current] + FIT_MARGIN, best - FIT_TIE)]
    finest = min(winners, key=lambda size: at if size is None else size, default=None)
    return AxialFit(finest, current, counts)
