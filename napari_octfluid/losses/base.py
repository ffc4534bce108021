"""One contract for every loss: ``loss(logits[N,C,H,W], target[N,H,W]) -> scalar``, and a registry by name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOSSES: dict[str, type["SegmentationLoss"]] = {}


def register(name: str):
    """Class decorator: make a loss available as ``LOSSES[name]`` (the UI's and CLI's choices come from here)."""

    def add(cls):
        cls.name = name
        LOSSES[name] = cls
        return cls

    return add


@dataclass
class Prepared:
    """What every loss works from: probabilities, one-hot target, valid-pixel mask, optional pixel weights."""

    logits: torch.Tensor
    probs: torch.Tensor
    onehot: torch.Tensor
    target: torch.Tensor  # class indices with ignored pixels set to 0 (masked out by ``valid``)
    valid: torch.Tensor
    weight: torch.Tensor | None


class SegmentationLoss(nn.Module):
    """Base of all losses.

    Parameters
    ----------
    ignore_index : int, optional
        Target value of pixels that carry no label (e.g. outside an annotated band); they do not count.
    """

    name = "loss"

    def __init__(self, ignore_index: int | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def prepare(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> Prepared:
        if (
            logits.ndim != 4
            or target.ndim != 3
            or logits.shape[0] != target.shape[0]
            or logits.shape[2:] != target.shape[1:]
        ):
            raise ValueError(
                f"{self.name}: expected logits [N,C,H,W] and target [N,H,W], "
                f"got {tuple(logits.shape)} and {tuple(target.shape)}"
            )
        target = target.long()
        valid = torch.ones_like(target, dtype=logits.dtype)
        if self.ignore_index is not None:
            valid = (target != self.ignore_index).to(logits.dtype)
            target = torch.where(target == self.ignore_index, torch.zeros_like(target), target)
        n_classes = logits.shape[1]
        if target.numel() and int(target.max()) >= n_classes:
            raise ValueError(
                f"{self.name}: target holds class {int(target.max())} but the model has {n_classes} classes"
            )
        logits = self.transform_logits(logits)
        onehot = F.one_hot(target, n_classes).permute(0, 3, 1, 2).to(logits.dtype)
        if weight is not None:
            weight = weight.to(logits.dtype).reshape(target.shape).unsqueeze(1)
        return Prepared(logits, logits.softmax(dim=1), onehot, target, valid.unsqueeze(1), weight)

    def transform_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Hook for losses that act on the logits before the softmax (the adaptive class weights)."""
        return logits

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return self.compute(self.prepare(logits, target, weight))

    def compute(self, x: Prepared) -> torch.Tensor:
        raise NotImplementedError

    def terms(self) -> dict[str, float]:
        """The parts of the last value (a composite has several; a single loss reports none)."""
        return {}

    def learnable_parameters(self) -> dict[str, list[float]]:
        """Parameters this loss trains with the model, by name, for reports (none for most losses)."""
        return {name: p.detach().cpu().flatten().tolist() for name, p in self.named_parameters()}


def foreground(tensor: torch.Tensor) -> torch.Tensor:
    """The classes after background (class 0): region losses score the fluid classes."""
    return tensor[:, 1:] if tensor.shape[1] > 1 else tensor
