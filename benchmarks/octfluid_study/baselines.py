"""Other networks of about the TransUNet's size, for the network comparison of the study (after Darooei et al.
2023, Table 1).

The networks are MONAI's; this module only wraps them to the TransUNet's contract: any B-scan size (padded inside
to the network's multiple, never resized), logits ``[N, C, H, W]`` and a ``decision_threshold`` attribute, so that
training, calibration and prediction treat every network alike.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class PaddedNetwork(nn.Module):
    """``forward(x[N, 1, H, W]) -> logits[N, C, H, W]`` for any H, W, around a network that needs multiples of
    ``multiple``."""

    def __init__(self, network: nn.Module, multiple: int, name: str) -> None:
        super().__init__()
        self.network = network
        self.multiple = multiple
        self.name = name
        self.decision_threshold: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.network(x)[..., :height, :width]


def basic_unet(num_classes: int = 2, features: tuple[int, ...] = (16, 32, 64, 128, 256, 16)) -> PaddedNetwork:
    """MONAI's BasicUNet in 2D (four 2x poolings); the default features give 1.95 M parameters."""
    from monai.networks.nets import BasicUNet

    return PaddedNetwork(
        BasicUNet(spatial_dims=2, in_channels=1, out_channels=num_classes, features=features), 16, "basic_unet"
    )


def attention_unet(num_classes: int = 2, channels: tuple[int, ...] = (16, 32, 64, 128, 256)) -> PaddedNetwork:
    """MONAI's AttentionUnet in 2D (attention gates on the skip connections, Oktay et al. 2018); the default
    channels give 1.99 M parameters."""
    from monai.networks.nets import AttentionUnet

    return PaddedNetwork(
        AttentionUnet(
            spatial_dims=2,
            in_channels=1,
            out_channels=num_classes,
            channels=channels,
            strides=(2,) * (len(channels) - 1),
        ),
        2 ** (len(channels) - 1),
        "attention_unet",
    )


def swin_unetr(num_classes: int = 2, feature_size: int = 12) -> PaddedNetwork:
    """MONAI's SwinUNETR in 2D (needs the optional ``einops`` package)."""
    try:
        import einops  # noqa: F401  (MONAI imports it only when the network first runs; say so now)
    except ImportError as error:
        raise RuntimeError("SwinUNETR needs the einops package: pip install einops") from error
    from monai.networks.nets import SwinUNETR

    return PaddedNetwork(
        SwinUNETR(spatial_dims=2, in_channels=1, out_channels=num_classes, feature_size=feature_size), 32, "swin_unetr"
    )


BASELINES: dict[str, Callable[..., PaddedNetwork]] = {
    "basic_unet": basic_unet,
    "attention_unet": attention_unet,
    "swin_unetr": swin_unetr,
}
