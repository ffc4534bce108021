"""TransUNet for OCT B-scans of any size: CNN encoder, transformer bottleneck, U-Net decoder.

After Chen et al. 2021 (TransUNet) as modified by Darooei et al. 2023 (J Med Signals Sens 13:253-60, Methods and
Table 2).
Written here because no installable library has this 2D TransUNet for torch without torchvision/timm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..axial import SPECTRALIS_AXIAL_SPACING_MM
from .configs import TransUNetConfig


def conv_stack(in_channels: int, out_channels: int, count: int, stride: int = 1) -> nn.Sequential:
    """``count`` x (3x3 conv, batch norm, ReLU), the first with ``stride``."""
    layers: list[nn.Module] = []
    for index in range(count):
        layers += [
            nn.Conv2d(
                in_channels if index == 0 else out_channels,
                out_channels,
                3,
                padding=1,
                bias=False,
                stride=stride if index == 0 else 1,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class TransformerBottleneck(nn.Module):
    """Tokens = pixels of the deepest feature map, projected to ``embed_dim``, plus a learned position
    embedding (Darooei et al. 2023, Eq. 2) interpolated to the token grid so any B-scan size works; pre-norm blocks of
    multi-head self-attention and a GELU MLP; projected back to the feature channels."""

    def __init__(self, channels: int, config: TransUNetConfig) -> None:
        super().__init__()
        self.project_in = nn.Conv2d(channels, config.embed_dim, 1)
        self.position = nn.Parameter(torch.zeros(1, config.embed_dim, *config.pos_grid))
        nn.init.trunc_normal_(self.position, std=0.02)
        block = nn.TransformerEncoderLayer(
            config.embed_dim,
            config.num_heads,
            config.num_mlp,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, config.num_transformer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.embed_dim)
        self.project_out = nn.Conv2d(config.embed_dim, channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = features.shape
        tokens = self.project_in(features)
        position = F.interpolate(self.position, size=(height, width), mode="bilinear", align_corners=False)
        tokens = (tokens + position.to(tokens.dtype)).flatten(2).transpose(1, 2)
        tokens = self.norm(self.blocks(tokens))
        return features + self.project_out(tokens.transpose(1, 2).reshape(batch, -1, height, width))


class PixelShuffleUpsample(nn.Module):
    """Doubles the resolution exactly as ``nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)``, computed as
    a 1x1 convolution to ``4 * out_channels`` channels and a pixel shuffle.

    With kernel 2 and stride 2 every input pixel writes its own ``out_channels x 2 x 2`` block, which is exactly what
    the 1x1 convolution computes per pixel and the shuffle lays out. A 1x1 convolution is one matrix product, which
    oneDNN runs near the CPU's peak in the channels_last inference copy (:mod:`.fusion`): there the four upsamplers
    take 5.7 ms of a 496 x 768 B-scan instead of the transposed convolutions' 9.8 ms (one thread; issue 22).

    The parameters keep the transposed convolution's names, shapes and initialisation (``weight`` ``[in, out, 2, 2]``,
    ``bias`` ``[out]``), so checkpoints load unchanged in octfluid versions before and after this change and the
    parameter count stays the paper model's; :meth:`as_convolution` permutes them into the 1x1 convolution (done at
    each call here, a few hundred kilobytes, and once in the inference copy of :mod:`.fusion`).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # the transposed convolution's own initialisation, drawing the same random numbers: a seeded training run
        # starts from the same weights as before
        reference = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.weight, self.bias = reference.weight, reference.bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, scale_factor=2"

    def convolution_weight(self) -> torch.Tensor:
        """``weight[in, out, row, column]`` as the 1x1 convolution's ``[out * 4 + row * 2 + column, in, 1, 1]``,
        the channel order ``nn.PixelShuffle(2)`` reads."""
        in_channels = self.weight.shape[0]
        return self.weight.permute(1, 2, 3, 0).reshape(-1, in_channels, 1, 1)

    def convolution_bias(self) -> torch.Tensor:
        return self.bias.repeat_interleave(4)  # one bias per output channel, the same for its four pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.convolution_weight(), self.convolution_bias()), 2)

    def as_convolution(self) -> nn.Sequential:
        """The same map as standalone modules, ``Conv2d(in, 4 * out, 1)`` and ``PixelShuffle(2)``, with the weights
        copied (for inference: no permutation at each call)."""
        in_channels, out_channels = self.weight.shape[:2]
        # skip_init: filled below, and drawing no random numbers keeps a training run's random stream as it was
        convolution = nn.utils.skip_init(
            nn.Conv2d, in_channels, 4 * out_channels, 1, device=self.weight.device, dtype=self.weight.dtype
        )
        with torch.no_grad():
            convolution.weight.copy_(self.convolution_weight())
            convolution.bias.copy_(self.convolution_bias())
        return nn.Sequential(convolution, nn.PixelShuffle(2))


class TransUNet(nn.Module):
    """``forward(x[N, 1, H, W]) -> logits[N, C, H, W]`` for any H, W (padded inside to a multiple of 32).

    Every encoder level starts with a stride-2 convolution (Darooei et al. 2023, Methods), so the decoder ends at half
    resolution and the logits are upsampled bilinearly: the cost of full-resolution convolutions is saved
    (5x faster on a CPU) for a boundary resolution of two pixels.
    """

    def __init__(self, config: TransUNetConfig = TransUNetConfig()) -> None:
        super().__init__()
        self.config = config
        # fluid when P(fluid) exceeds this (two-class models); None: the most probable class. Chosen on the
        # training data after training (training/calibrate.py) and saved in the checkpoint.
        self.decision_threshold: float | None = None
        # fluid regions under this many pixels in a B-scan are removed (min_lesion.py); chosen with the threshold
        self.min_lesion_pixels: int | None = None
        # the axial pixel size (mm) of the training B-scans: prediction resamples scans of another to it (axial.py);
        # saved in the checkpoint, Spectralis' for checkpoints that do not store it
        self.axial_spacing_mm: float = SPECTRALIS_AXIAL_SPACING_MM
        # for a model fine-tuned on a scan whose file gave no axial spacing: the one its corrections fitted
        # (training/axial_fit.py), which prediction takes scans without a spacing to have; None for every other model
        self.fitted_axial_spacing_mm: float | None = None
        filters = config.filter_num
        self.encoder = nn.ModuleList(
            conv_stack(config.in_channels if i == 0 else filters[i - 1], f, config.stack_num_down, stride=2)
            for i, f in enumerate(filters)
        )
        self.bottleneck = TransformerBottleneck(filters[-1], config)
        self.upsample = nn.ModuleList(
            PixelShuffleUpsample(filters[i + 1], filters[i]) for i in reversed(range(len(filters) - 1))
        )
        self.decoder = nn.ModuleList(
            conv_stack(2 * filters[i], filters[i], config.stack_num_up) for i in reversed(range(len(filters) - 1))
        )
        self.head = nn.Conv2d(filters[0], config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        step = self.config.downsampling
        pad_h, pad_w = (-height) % step, (-width) % step
        if pad_h or pad_w:  # pad, never resize: a B-scan keeps its geometry
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(skips.pop())
        for level in range(len(self.decoder)):
            x = self.decode(level, x, skips.pop())
        # two channels: bilinear upsampling runs 3x slower on them in channels_last (the inference copy's layout)
        logits = F.interpolate(self.head(x).contiguous(), scale_factor=2, mode="bilinear", align_corners=False)
        return logits[..., :height, :width]

    def decode(self, level: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Decoder level ``level``: ``x`` upsampled, concatenated with the encoder's ``skip`` and convolved (the
        inference copy of :mod:`.fusion` computes the same in fewer operations)."""
        return self.decoder[level](torch.cat([self.upsample[level](x), skip], dim=1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
