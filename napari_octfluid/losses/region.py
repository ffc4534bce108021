"""Overlap (region) losses: Dice, Jaccard, Tversky, focal Tversky, generalized Dice, sensitivity-specificity,
exponential logarithmic. They score the fluid classes, pooled over the batch."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss, GeneralizedDiceLoss, TverskyLoss

from . import _functional as Fn
from .base import Prepared, SegmentationLoss, foreground, register

# MONAI computes these from probabilities and one-hot targets; we hand it both with ignored pixels zeroed,
# which is exactly their formula restricted to the valid pixels.
_MONAI_INPUTS = dict(include_background=True, to_onehot_y=False, softmax=False, sigmoid=False, batch=True)


def _fg(x: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    return foreground(x.probs) * x.valid, foreground(x.onehot) * x.valid


@register("dice")
class DiceLossOct(SegmentationLoss):
    """Soft Dice loss 1 - 2|P.G| / (|P| + |G|) (Darooei et al. 2023, Eq. 5, first term) — MONAI's DiceLoss."""

    def __init__(self, smooth: float = 1e-5, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.monai = DiceLoss(smooth_nr=smooth, smooth_dr=smooth, **_MONAI_INPUTS)

    def compute(self, x: Prepared) -> torch.Tensor:
        return self.monai(*_fg(x))


@register("jaccard")
class JaccardLoss(SegmentationLoss):
    """Soft IoU loss 1 - |P.G| / (|P| + |G| - |P.G|) (Rahman & Wang 2016) — MONAI's DiceLoss(jaccard=True)."""

    def __init__(self, smooth: float = 1e-5, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.monai = DiceLoss(jaccard=True, smooth_nr=smooth, smooth_dr=smooth, **_MONAI_INPUTS)

    def compute(self, x: Prepared) -> torch.Tensor:
        return self.monai(*_fg(x))


@register("tversky")
class TverskyLossOct(SegmentationLoss):
    """Tversky loss 1 - TP / (TP + alpha FP + beta FN) (Salehi et al. 2017) — MONAI's TverskyLoss.

    alpha weighs false positives and beta false negatives (MONAI's and Salehi's convention); beta = 0.7
    penalises missed fluid more, as Salehi et al. recommend. alpha = beta = 0.5 is the Dice loss.
    """

    def __init__(
        self, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1e-5, ignore_index: int | None = None
    ) -> None:
        super().__init__(ignore_index)
        self.alpha, self.beta = alpha, beta
        self.monai = TverskyLoss(alpha=alpha, beta=beta, smooth_nr=smooth, smooth_dr=smooth, **_MONAI_INPUTS)

    def compute(self, x: Prepared) -> torch.Tensor:
        return self.monai(*_fg(x))


@register("focal_tversky")
class FocalTverskyLoss(SegmentationLoss):
    """Focal Tversky loss (1 - TI)^gamma with TI = TP / (TP + alpha FN + (1 - alpha) FP)
    (Abraham & Khan 2019: alpha = 0.7, and their exponent 1/gamma with gamma = 4/3, i.e. 0.75). Hand-written:
    MONAI has no focal Tversky.

    Note alpha weighs false negatives here, as in Abraham & Khan; gamma = 1 gives
    ``tversky(alpha=1 - alpha, beta=alpha)``.
    """

    def __init__(
        self, alpha: float = 0.7, gamma: float = 0.75, smooth: float = 1e-5, ignore_index: int | None = None
    ) -> None:
        super().__init__(ignore_index)
        self.alpha, self.gamma, self.smooth = alpha, gamma, smooth

    def compute(self, x: Prepared) -> torch.Tensor:
        tp, fp, fn = Fn.soft_counts(foreground(x.probs), foreground(x.onehot), x.valid)
        index = Fn.tversky_index(tp, fp, fn, fp_weight=1 - self.alpha, fn_weight=self.alpha, smooth=self.smooth)
        return ((1 - index).clamp_min(0) ** self.gamma).mean()


@register("generalized_dice")
class GeneralizedDiceLossOct(SegmentationLoss):
    """Generalized Dice loss with class weights 1 / (sum r)^2 (Sudre et al. 2017) — MONAI's
    GeneralizedDiceLoss over every class, background included, so a batch without fluid is still scored."""

    def __init__(self, smooth: float = 1e-5, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.monai = GeneralizedDiceLoss(w_type="square", smooth_nr=smooth, smooth_dr=smooth, **_MONAI_INPUTS)

    def compute(self, x: Prepared) -> torch.Tensor:
        return self.monai(x.probs * x.valid, x.onehot * x.valid)


@register("sensitivity_specificity")
class SensitivitySpecificityLoss(SegmentationLoss):
    """lam * (1 - sensitivity) + (1 - lam) * (1 - specificity) in squared-error form (Brosch et al. 2015,
    as compared by Sudre et al. 2017; lam = 0.05). Hand-written: no library has it."""

    def __init__(self, lam: float = 0.05, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.lam = lam

    def compute(self, x: Prepared) -> torch.Tensor:
        return Fn.sensitivity_specificity(foreground(x.probs), foreground(x.onehot), x.valid, self.lam)


@register("exp_log")
class ExponentialLogarithmicLoss(SegmentationLoss):
    """w_dice E[(-ln Dice_i)^gamma_dice] + w_cross E[w_l (-ln p_l)^gamma_cross] (Wong et al. 2018),
    with label-frequency weights w_l = (sum_k f_k / f_l)^0.5. Hand-written: no library has it."""

    def __init__(
        self,
        w_dice: float = 0.8,
        w_cross: float = 0.2,
        gamma_dice: float = 0.3,
        gamma_cross: float = 0.3,
        smooth: float = 1.0,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__(ignore_index)
        self.w_dice, self.w_cross = w_dice, w_cross
        self.gamma_dice, self.gamma_cross, self.smooth = gamma_dice, gamma_cross, smooth

    def compute(self, x: Prepared) -> torch.Tensor:
        tp, fp, fn = Fn.soft_counts(x.probs, x.onehot, x.valid)
        dice = (2 * tp + self.smooth) / (2 * tp + fp + fn + self.smooth)
        dice_term = (-torch.log(dice.clamp(Fn.EPS, 1.0))).clamp_min(Fn.EPS) ** self.gamma_dice
        frequency = (x.onehot * x.valid).sum(dim=(0, 2, 3)).clamp_min(1.0)
        label_weight = ((frequency.sum() / frequency) ** 0.5).detach()
        p_true = (x.probs * x.onehot).sum(dim=1, keepdim=True).clamp(Fn.EPS, 1.0)
        w_true = (label_weight.view(1, -1, 1, 1) * x.onehot).sum(dim=1, keepdim=True)
        cross = w_true * (-torch.log(p_true)).clamp_min(Fn.EPS) ** self.gamma_cross
        return self.w_dice * dice_term.mean() + self.w_cross * Fn.pixel_mean(cross, x.valid, x.weight)
