"""Dual Focal Loss and its Adaptive Class Weight variant, after Hossain, Paplinski & Betts 2019, "Adaptive Class
Weight based Dual Focal Loss for Improved Semantic Segmentation" (arXiv:1909.11932). Hand-written: no library has
them."""

from __future__ import annotations

import torch
from torch import nn

from . import _functional as Fn
from .base import Prepared, SegmentationLoss, register


@register("dual_focal")
class DualFocalLoss(SegmentationLoss):
    """DFL = -sum_i log(1 - (P_i - P_hat_i)^2) over all classes, true and false (their Eq. 7); its
    gradient vanishes at a perfect prediction (Eq. 14)."""

    def compute(self, x: Prepared) -> torch.Tensor:
        return Fn.pixel_mean(Fn.dual_focal_term(x.probs, x.onehot), x.valid, x.weight)


@register("adaptive_dual_focal")
class AdaptiveDualFocalLoss(DualFocalLoss):
    """ADFL: DFL after the Adaptive Class Weight layer Z_i = w_i x_i, a learnable per-class scale of the
    logits before the softmax (their Eq. 21).

    The weights are parameters of this module: give them to the optimiser with the model's
    (``list(model.parameters()) + list(loss.parameters())``); they are saved with ``state_dict()``.
    """

    def __init__(self, num_classes: int = 2, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        self.class_weights = nn.Parameter(torch.ones(num_classes))

    def transform_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != self.class_weights.numel():
            raise ValueError(
                f"adaptive_dual_focal was built for {self.class_weights.numel()} classes, "
                f"the logits have {logits.shape[1]}"
            )
        return logits * self.class_weights.view(1, -1, 1, 1).to(logits.dtype)
