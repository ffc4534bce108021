"""A weighted sum of registered losses that reports each weighted term, e.g. the
alpha*Dice + beta*focal Tversky + gamma*weighted BCE of Darooei et al. 2023 (Eq. 5)."""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn

from .base import LOSSES, SegmentationLoss, register

# Darooei et al. 2023 name the three terms of Eq. 5 but state no values for alpha, beta, gamma: equal weights.
PAPER_TERMS = (("dice", 1.0), ("focal_tversky", 1.0), ("wbce", 1.0))
_TERM = re.compile(r"^\s*(?:([0-9.eE+-]+)\s*\*\s*)?([a-z_]+)\s*$")


@register("composite")
class CompositeLoss(SegmentationLoss):
    """sum_k weight_k * loss_k; ``terms()`` gives each weighted term of the last call, for the training plot.

    Parameters
    ----------
    terms : sequence of (name, weight), optional
        Registered loss names and their weights; the paper's Eq. 5 with alpha = beta = gamma = 1 by default.
    """

    def __init__(self, terms: Sequence[tuple[str, float]] = PAPER_TERMS, ignore_index: int | None = None) -> None:
        super().__init__(ignore_index)
        unknown = [name for name, _ in terms if name not in LOSSES or name == "composite"]
        if unknown or not terms:
            raise ValueError(f"composite: unknown or missing terms {unknown}; choose from {sorted(LOSSES)}")
        self.weights = [float(weight) for _, weight in terms]
        self.parts = nn.ModuleDict({name: LOSSES[name](ignore_index=ignore_index) for name, _ in terms})
        self._last: dict[str, float] = {}

    @property
    def ignore_index(self) -> int | None:
        return self._ignore_index

    @ignore_index.setter
    def ignore_index(self, value: int | None) -> None:
        """Setting it on the composite sets it on every part, which is where it is used."""
        self._ignore_index = value
        for part in getattr(self, "parts", {}).values():
            part.ignore_index = value

    @classmethod
    def from_spec(cls, spec: str, ignore_index: int | None = None) -> "CompositeLoss":
        """Parse ``"0.5*dice + 0.3*focal_tversky + 0.2*wbce"`` (a weight of 1 may be left out)."""
        terms = []
        for part in spec.split("+"):
            match = _TERM.match(part)
            if not match:
                raise ValueError(f"composite: cannot read the term {part.strip()!r} of {spec!r}")
            terms.append((match.group(2), float(match.group(1) or 1.0)))
        return cls(terms, ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        total = logits.new_zeros(())
        self._last = {}
        for (name, loss), factor in zip(self.parts.items(), self.weights):
            term = factor * loss(logits, target, weight)
            self._last[name] = float(term.detach())
            total = total + term
        return total

    def terms(self) -> dict[str, float]:
        return dict(self._last)

    @property
    def spec(self) -> str:
        return " + ".join(f"{w:g}*{name}" for name, w in zip(self.parts, self.weights))


def build_loss(spec: str, ignore_index: int | None = None, **kwargs) -> SegmentationLoss:
    """A loss from a registry name (``"focal"``) or a weighted sum (``"1*dice + 0.5*wbce"``)."""
    spec = spec.strip()
    if spec in LOSSES:
        return LOSSES[spec](ignore_index=ignore_index, **kwargs)
    return CompositeLoss.from_spec(spec, ignore_index=ignore_index)
