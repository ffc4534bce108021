"""The learning weights pulled back towards the starting ones at every step: L2-SP (Li, Grandvalet & Davoine, "Explicit
inductive bias for transfer learning with convolutional networks", ICML 2018, eq. 3: a penalty alpha/2 ||w - w0||^2
instead of weight decay towards zero) in its decoupled form, as AdamW decouples weight decay from the gradient
(Loshchilov & Hutter 2019, Algorithm 2 line 12): after each optimiser step, w <- w - lr * strength * (w - w0).

Decoupled, the pull does not pass through Adam's per-weight scaling, so every weight returns at the same rate
whatever its gradients' size; with the penalty in the loss Adam would normalise it away. WiSE-FT (``blend.py``) steps
back once at the end; the pull holds the weights near the start all along, so what the few corrected B-scans teach
is learnt within reach of what the model knew. No library offers either for an arbitrary ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def check_start_pull(strength: float) -> float:
    """``strength`` as a float >= 0 (0: no pull), or a ValueError that says what it means."""
    value = float(strength)
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(
            f"The pull towards the starting weights must be 0 (none) or more, not {strength!r}: each step moves "
            "the weights back by the learning rate times it."
        )
    return value


class StartingPointPull:
    """Pulls ``parameters`` back towards their values when it was made (see the module's docstring)."""

    def __init__(self, parameters: Iterable[nn.Parameter], strength: float) -> None:
        self.strength = check_start_pull(strength)
        self._pairs = [(p, p.detach().clone()) for p in parameters]

    @torch.no_grad()
    def __call__(self, learning_rate: float) -> None:
        """After an optimiser step at ``learning_rate``: each weight moves that share of the way back."""
        share = min(float(learning_rate) * self.strength, 1.0)  # never past the start
        if share <= 0.0:
            return
        for parameter, start in self._pairs:
            parameter.lerp_(start.to(parameter.device), share)
