"""Which parts of the TransUNet a training run may change.

Fine-tuning on a few corrected B-scans can adapt the whole network, or only the decoder (the transposed
convolutions, the decoder's convolutions and the head) while the CNN encoder and the transformer bottleneck keep
the features the starting weights learnt on many subjects: fewer parameters to over-fit, less to forget, and no
backward pass through the encoder (a shorter step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch stays out of the command line's start-up, which reads the choices below
    from torch import nn

# the TransUNet's top-level modules that each choice trains (model/transunet.py)
TRAINABLE_PARTS: dict[str, tuple[str, ...] | None] = {
    "all": None,  # every parameter
    "decoder": ("upsample", "decoder", "head"),
}
TRAINABLE_LABELS = {"all": "whole network", "decoder": "decoder only"}  # as the Fine-tune widget offers them


def select_trainable(model: nn.Module, part: str) -> list[nn.Parameter]:
    """Let only ``part`` of ``model`` learn (``requires_grad``), and return its parameters for the optimiser."""
    if part not in TRAINABLE_PARTS:
        raise ValueError(f"Unknown trainable part {part!r}: choose one of {', '.join(TRAINABLE_PARTS)}.")
    prefixes = TRAINABLE_PARTS[part]
    chosen = []
    for name, parameter in model.named_parameters():
        learns = prefixes is None or name.split(".", 1)[0] in prefixes
        parameter.requires_grad_(learns)
        if learns:
            chosen.append(parameter)
    if not chosen:
        raise ValueError(f"The model has no parameters in its {part!r} part: train 'all' instead.")
    return chosen
