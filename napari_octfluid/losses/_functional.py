"""The maths of the losses as plain functions of probabilities and one-hot targets (no modules, no state).

Shapes: ``probs`` and ``onehot`` are ``[N, C, H, W]``; ``valid`` is ``[N, 1, H, W]`` (1 where a pixel counts,
0 where it is ignored); per-pixel ``weight`` maps are ``[N, 1, H, W]``. Region sums pool the whole batch, so a
batch of B-scans without fluid still gives a defined value. Written by hand because no library has these
exact forms (MONAI's versions are used in the modules where they match, see ``region.py``).
"""

from __future__ import annotations

import torch

EPS = 1e-7


def soft_counts(probs: torch.Tensor, onehot: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Soft true positives, false positives and false negatives per class, pooled over batch and pixels."""
    probs, onehot = probs * valid, onehot * valid
    dims = (0, 2, 3)
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    return tp, fp, fn


def tversky_index(tp, fp, fn, fp_weight: float, fn_weight: float, smooth: float = 1e-5) -> torch.Tensor:
    """Tversky index TP / (TP + a FP + b FN) (Salehi et al. 2017)."""
    return (tp + smooth) / (tp + fp_weight * fp + fn_weight * fn + smooth)


def pixel_mean(per_pixel: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of a ``[N, 1, H, W]`` per-pixel loss over the valid pixels, each scaled by its weight."""
    if weight is not None:
        per_pixel = per_pixel * weight
    return (per_pixel * valid).sum() / valid.sum().clamp_min(1.0)


def binary_cross_entropy(p: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | float = 1.0) -> torch.Tensor:
    """-(w y log p + (1 - y) log(1 - p)) per element (the weighted cross-entropy as Sudre et al. 2017 write it)."""
    p = p.clamp(EPS, 1 - EPS)
    return -(pos_weight * y * torch.log(p) + (1 - y) * torch.log(1 - p))


def batch_positive_weight(y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """w = (N - sum y) / sum y over the valid pixels of a batch (Sudre et al. 2017, weighted cross-entropy).

    Two guards the formula lacks: a batch without fluid counts one positive, so w stays finite (it multiplies
    y = 0 anyway); and w is at least 1, since the weight exists to lift rare fluid, and a batch that is
    mostly fluid would otherwise weigh its fluid by ~0 and stop learning from it.
    """
    positives = (y * valid).sum()
    return ((valid.sum() - positives) / positives.clamp_min(1.0)).clamp_min(1.0).detach()


def focal_term(p_true: torch.Tensor, alpha_true: torch.Tensor, gamma: float) -> torch.Tensor:
    """-alpha (1 - p)^gamma log p on the true class's probability (Lin et al. 2017; Hossain, Paplinski &
    Betts 2019, Eq. 6)."""
    p_true = p_true.clamp(EPS, 1.0)
    return -alpha_true * (1 - p_true) ** gamma * torch.log(p_true)


def dual_focal_term(probs: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """-sum_i log(1 - (P_i - P_hat_i)^2) over the classes, per pixel (Hossain, Paplinski & Betts 2019, Eq. 7)."""
    return -torch.log((1 - (onehot - probs) ** 2).clamp_min(EPS)).sum(dim=1, keepdim=True)


def sensitivity_specificity(
    p: torch.Tensor, r: torch.Tensor, valid: torch.Tensor, lam: float, eps: float = 1e-5
) -> torch.Tensor:
    """lam * sum (r-p)^2 r / sum r + (1 - lam) * sum (r-p)^2 (1-r) / sum (1-r) (Brosch et al. 2015)."""
    squared = (r - p) ** 2 * valid
    sensitivity_error = (squared * r).sum() / ((r * valid).sum() + eps)
    specificity_error = (squared * (1 - r)).sum() / (((1 - r) * valid).sum() + eps)
    return lam * sensitivity_error + (1 - lam) * specificity_error
