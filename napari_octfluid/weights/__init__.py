"""Where the shipped default weights live, and the message when none are installed.

The weights themselves are trained from the shared expert-labelled data by a separate, reproducible recipe;
until that file exists here, nothing pretends to predict.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
DEFAULT_WEIGHTS = WEIGHTS_DIR / "octfluid_default.pt"  # a weights-only checkpoint (model/checkpoint.py)
NO_WEIGHTS_MESSAGE = (
    "No trained weights are installed with this version of octfluid, so it cannot predict yet. "
    "Give a trained checkpoint with --weights (or choose one in the Predict widget)."
)


def default_weights_path() -> Path | None:
    """The shipped default weights, or None when this installation has none."""
    return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None
