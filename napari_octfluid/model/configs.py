"""Model configurations by name; the chosen one is saved inside every checkpoint."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

# Bounds of a config octfluid builds: far beyond any sensible TransUNet, well short of one that exhausts memory
# or takes minutes to build (the parameter count, checked before a checkpoint's model is built, bounds the rest).
MAX_LEVELS = 8  # encoder levels: B-scans are padded to a multiple of 2 ** levels
MAX_CHANNELS = 4096  # per level, and the transformer's width and MLP
MAX_LAYERS = 16  # convolutions per level, transformer blocks
MAX_POSITION_GRID = 1024
MAX_CLASSES = 255  # labels are uint8


@dataclass(frozen=True)
class TransUNetConfig:
    """The TransUNet of Darooei et al. 2023 (J Med Signals Sens 13:253-60, Table 2), in keras-unet-collection's terms.

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

    def __post_init__(self) -> None:
        """Refuse a malformed config with a ValueError naming the setting (a checkpoint's settings are data from
        a file, so each is checked: a string, a bool, NaN, zero, a negative or a gigantic value)."""
        filters = _whole_numbers("filter_num", self.filter_num, 1, MAX_LEVELS, MAX_CHANNELS)
        grid = _whole_numbers("pos_grid", self.pos_grid, 2, 2, MAX_POSITION_GRID)
        object.__setattr__(self, "filter_num", filters)
        object.__setattr__(self, "pos_grid", grid)
        for name, low, high in (
            ("stack_num_down", 1, MAX_LAYERS),
            ("stack_num_up", 1, MAX_LAYERS),
            ("embed_dim", 1, MAX_CHANNELS),
            ("num_heads", 1, MAX_CHANNELS),
            ("num_mlp", 1, MAX_CHANNELS),
            ("num_transformer", 1, MAX_LAYERS),
            ("in_channels", 1, 1),
            ("num_classes", 2, MAX_CLASSES),
        ):
            object.__setattr__(self, name, _whole_number(name, getattr(self, name), low, high))
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})")

    def parameter_count(self) -> int:
        """The number of parameters of the TransUNet this config builds, computed without building it (equal to
        ``count_parameters(TransUNet(config))``, which the tests check)."""
        filters, down, up = self.filter_num, self.stack_num_down, self.stack_num_up
        count = 0
        for level, out in enumerate(filters):  # encoder: 3x3 convolutions without bias, batch norm
            first_in = self.in_channels if level == 0 else filters[level - 1]
            count += 9 * out * (first_in + (down - 1) * out) + 2 * out * down
        for level in range(len(filters) - 1):  # 2x2 transposed convolution up, then convolutions on the concat
            out = filters[level]
            count += 4 * filters[level + 1] * out + out
            count += 9 * out * (2 * out + (up - 1) * out) + 2 * out * up
        embed, mlp, deepest = self.embed_dim, self.num_mlp, filters[-1]
        block = 4 * embed * embed + 4 * embed + 2 * embed * mlp + mlp + embed + 4 * embed  # attention, MLP, norms
        count += deepest * embed + embed + embed * self.pos_grid[0] * self.pos_grid[1]  # projection in, positions
        count += self.num_transformer * block + 2 * embed + embed * deepest + deepest  # blocks, norm, out
        count += filters[0] * self.num_classes + self.num_classes  # head
        return count

    def build_bytes(self) -> int:
        """Memory of the built model: float32 parameters, the batch-norm statistics, and the one transformer
        block that torch builds as the template of the others."""
        embed, mlp = self.embed_dim, self.num_mlp
        template = 4 * embed * embed + 2 * embed * mlp + 9 * embed + mlp
        batch_norm_channels = self.stack_num_down * sum(self.filter_num) + self.stack_num_up * sum(self.filter_num[:-1])
        return 4 * (self.parameter_count() + template + 2 * batch_norm_channels) + 8 * batch_norm_channels

    @property
    def downsampling(self) -> int:
        """B-scans are padded to a multiple of this before the network sees them."""
        return 2 ** len(self.filter_num)

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TransUNetConfig":
        """The config saved by :meth:`to_dict`; ValueError naming the setting for anything malformed."""
        if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
            raise ValueError(f"the settings are a {type(values).__name__}, not a table of named settings")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _whole_number(name: str, value: Any, low: int, high: int) -> int:
    # bool is an int to Python, and NaN or 96.0 pass a float check: only true integers are settings here
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        bounds = f"exactly {low}" if low == high else f"from {low} to {high}"
        raise ValueError(f"{name} must be {bounds}, not {value}")
    return int(value)


def _whole_numbers(name: str, values: Any, shortest: int, longest: int, high: int) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)):
        raise ValueError(f"{name} must be a list of whole numbers, not {values!r}")
    if not shortest <= len(values) <= longest:
        count = f"exactly {shortest}" if shortest == longest else f"{shortest} to {longest}"
        raise ValueError(f"{name} must hold {count} numbers, not {len(values)}")
    return tuple(_whole_number(f"{name}[{index}]", value, 1, high) for index, value in enumerate(values))


MODEL_CONFIGS: dict[str, TransUNetConfig] = {
    "paper": TransUNetConfig(),
    # for tests and smoke runs: the same shape of network, a few thousand parameters
    "tiny": TransUNetConfig(filter_num=(4, 8, 8, 16, 16), embed_dim=16, num_heads=2, num_mlp=32, pos_grid=(4, 4)),
}
DEFAULT_CONFIG = "paper"
