"""Every loss of the seed documents behind one contract: ``loss(logits[N,C,H,W], target[N,H,W]) -> scalar``.

``LOSSES[name]()`` builds a loss with the defaults the seeds give; the UI's choices come from ``LOSSES``.
"""

from . import dual_focal, pixel, region  # noqa: F401  (importing registers the losses)
from .base import LOSSES, SegmentationLoss
from .composite import PAPER_TERMS, CompositeLoss, build_loss

__all__ = ["LOSSES", "PAPER_TERMS", "CompositeLoss", "SegmentationLoss", "build_loss"]
