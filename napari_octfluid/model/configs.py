"""Model configurations by name; the chosen one is saved inside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TransUNetConfig:
    """The TransUNet of Darooei et al. 2023 (seed 000, Table 2), in keras-unet-collection's terms.

    Attributes
    ----------
    filter_num : tuple of int
        Channels per encoder level; five levels as in Table 2 ("filter number 5"), each opened by a stride-2
        convolution ("five convolutional layers with stride two", Methods), so the deepest map is 1/32.
    stack_num_down, stack_num_up : int
        3x3 convolutions per down-sampling level and after each concatenation (Table 2: 2 and 2).
    embed_dim, num_heads, num_mlp, num_transformer : int
        The transformer bottleneck on the deepest feature map (Table 2: 96, 2, 384, 2); GELU in its MLP.
    pos_grid : tuple of int
        Size of the learned position-embedding grid; it is interpolated to the token grid of any B-scan.
    in_channels, num_classes : int
        One OCT intensity channel; background + fluid today, more classes (IRF/SRF/PED) by config.
    """

    filter_num: tuple[int, ...] = (16, 32, 64, 128, 256)
    stack_num_down: int = 2
    stack_num_up: int = 2
    embed_dim: int = 96
    num_heads: int = 2
    num_mlp: int = 384
    num_transformer: int = 2
    pos_grid: tuple[int, int] = (16, 24)
    in_channels: int = 1
    num_classes: int = 2

    @property
    def downsampling(self) -> int:
        """B-scans are padded to a multiple of this before the network sees them."""
        return 2 ** len(self.filter_num)

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TransUNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


MODEL_CONFIGS: dict[str, TransUNetConfig] = {
    "paper": TransUNetConfig(),
    # for tests and smoke runs: the same shape of network, a few thousand parameters
    "tiny": TransUNetConfig(filter_num=(4, 8, 8, 16, 16), embed_dim=16, num_heads=2, num_mlp=32, pos_grid=(4, 4)),
}
DEFAULT_CONFIG = "paper"
