"""Pixel-wise losses: cross-entropy, binary and weighted binary cross-entropy, focal, label smoothing.
They accept a per-pixel weight map and ``ignore_index``."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from . import _functional as Fn
from .base import Prepared, SegmentationLoss, foreground, register


def _class_weights(weights: Sequence[float] | None, x: Prepared) -> torch.Tensor:
    if weights is None:
        return torch.ones(x.probs.shape[1], dtype=x.probs.dtype, device=x.probs.device)
    return torch.as_tensor(weights, dtype=x.probs.dtype, device=x.probs.device)


@register("ce")
class CrossEntropyLoss(SegmentationLoss):
    """Cross-entropy -sum_i w_i P_i log P_hat_i (Hossain, Paplinski & Betts 2019, Eq. 3, and Eq. 4 with class
    weights)."""

    def __init__(self, class_weights: Sequence[float] | None = None, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.class_weights = class_weights

    def compute(self, x: Prepared) -> torch.Tensor:
        per_pixel = F.cross_entropy(
            x.logits, x.target, weight=_class_weights(self.class_weights, x), reduction="none"
        ).unsqueeze(1)
        return Fn.pixel_mean(per_pixel, x.valid, x.weight)


@register("bce")
class BinaryCrossEntropyLoss(SegmentationLoss):
    """Binary cross-entropy of each fluid class's probability against its mask (the log loss)."""

    def compute(self, x: Prepared) -> torch.Tensor:
        per_pixel = Fn.binary_cross_entropy(foreground(x.probs), foreground(x.onehot)).mean(dim=1, keepdim=True)
        return Fn.pixel_mean(per_pixel, x.valid, x.weight)


@register("wbce")
class WeightedBinaryCrossEntropyLoss(SegmentationLoss):
    """Weighted BCE -(w y log p + (1 - y) log(1 - p)) (Darooei et al. 2023, Eq. 5, third term).

    Parameters
    ----------
    pos_weight : float, optional
        Weight of fluid pixels; by default computed per batch as w = (N - sum y) / sum y, the weight of
        Sudre et al. 2017's weighted cross-entropy.
    """

    def __init__(self, pos_weight: float | None = None, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.pos_weight = pos_weight

    def compute(self, x: Prepared) -> torch.Tensor:
        y = foreground(x.onehot)
        weight = self.pos_weight if self.pos_weight is not None else Fn.batch_positive_weight(y, x.valid)
        per_pixel = Fn.binary_cross_entropy(foreground(x.probs), y, weight).mean(dim=1, keepdim=True)
        return Fn.pixel_mean(per_pixel, x.valid, x.weight)


@register("focal")
class FocalLoss(SegmentationLoss):
    """Focal loss -alpha_i (1 - p_i)^gamma log p_i on the true class (Lin et al. 2017; Hossain, Paplinski &
    Betts 2019, Eq. 6).

    ``alpha`` weighs the fluid classes and 1 - alpha the background, so with two classes this is exactly
    their Eq. 9. gamma = 0 gives the (weighted) cross-entropy. Hand-written rather than MONAI's FocalLoss
    so that it takes per-pixel weights and ignored pixels; a test checks that the two agree.
    """

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.alpha, self.gamma = alpha, gamma

    def compute(self, x: Prepared) -> torch.Tensor:
        n_classes = x.probs.shape[1]
        alpha = torch.ones(n_classes, dtype=x.probs.dtype, device=x.probs.device)
        if self.alpha is not None:
            alpha[0], alpha[1:] = 1 - self.alpha, self.alpha
        p_true = (x.probs * x.onehot).sum(dim=1, keepdim=True)
        alpha_true = (alpha.view(1, -1, 1, 1) * x.onehot).sum(dim=1, keepdim=True)
        return Fn.pixel_mean(Fn.focal_term(p_true, alpha_true, self.gamma), x.valid, x.weight)


@register("label_smoothing")
class LabelSmoothingLoss(SegmentationLoss):
    """Cross-entropy against smoothed labels (1 - eps) one-hot + eps / C, each pixel weighted by its true
    class's weight (the label-smoothing regularisation of Szegedy et al. 2016 with the class weighting of
    Kaloi et al. 2023, whose abstract gives no formula of its own)."""

    def __init__(
        self, smoothing: float = 0.1, class_weights: Sequence[float] | None = None, ignore_index: int | None = None
    ) -> None:
        super().__init__(ignore_index)
        self.smoothing, self.class_weights = smoothing, class_weights

    def compute(self, x: Prepared) -> torch.Tensor:
        n_classes = x.probs.shape[1]
        smoothed = (1 - self.smoothing) * x.onehot + self.smoothing / n_classes
        per_pixel = -(smoothed * F.log_softmax(x.logits, dim=1)).sum(dim=1, keepdim=True)
        class_weight = (_class_weights(self.class_weights, x).view(1, -1, 1, 1) * x.onehot).sum(dim=1, keepdim=True)
        return Fn.pixel_mean(per_pixel * class_weight, x.valid, x.weight)
