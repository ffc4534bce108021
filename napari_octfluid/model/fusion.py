"""The inference copy of a TransUNet: the same map, rearranged for speed (issue 22).

:func:`fused_for_inference` returns a separate copy that prediction runs (``inference.predict`` and ``forward``);
the model itself is never changed, so training, fine-tuning (which needs its BatchNorm layers, and
``freeze_batchnorm`` finds them) and saving see the network as it was built.

In the copy:

- each BatchNorm is folded into the convolution before it (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass
  over every feature map less;
- on devices other than the CPU, the upsamplers are plain ``Conv2d`` + ``PixelShuffle`` modules with their weights
  permuted once, not at each call;
- on the CPU, the weights are channels_last, so the convolutions run in oneDNN's native layout instead of
  reordering every input and output (the largest gain), and the 1x1 convolutions run in oneDNN too;
- on the CPU, each decoder level's upsampling, concatenation and first convolution become one transposed
  convolution and one convolution (:class:`FoldedUpsampling`): 27 % fewer multiplications there and no
  concatenated map;
- on the CPU, each ReLU runs inside the convolution before it (oneDNN's post-op): one pass less per layer.

The logits equal the model's up to float rounding (a few 1e-6, see ``benchmarks/bench_inference.py --compare-old``;
the masks of the shared data's volumes are the same, pixel for pixel).
"""

from __future__ import annotations

import copy
import functools
import weakref

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .transunet import PixelShuffleUpsample, TransUNet

# set on the copies made here, so that a copy is never rearranged twice
_FUSED_MARK = "_octfluid_fused_for_inference"


def fused_for_inference(model: nn.Module) -> nn.Module:
    """An inference-only copy of ``model`` (in eval mode, no gradients) on the model's device, or ``model`` itself
    where there is nothing to rearrange: a copy made here, a model in training mode (its BatchNorm normalises with
    the batch's statistics, which cannot be folded), or a network that is not a :class:`TransUNet` (its forward
    may not accept channels_last tensors).

    The copy is kept while the model lives and given again until the model changes (a weight or buffer written
    or moved, an attribute such as its decision threshold set): making one takes about 50 ms, which a batch run
    over many small scans, or the widget predicting again, would otherwise pay at every scan."""
    if is_fused_for_inference(model) or model.training or not isinstance(model, TransUNet):
        return model
    state = _state_of(model)
    kept = _copies.get(model)
    if kept is not None and kept[0] == state:
        return kept[1]
    fused = _rearranged_copy(model)
    _copies[model] = (state, fused)
    return fused


# the copy of each live model, with the state it was made from (see fused_for_inference)
_copies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state_of(model: nn.Module) -> tuple:
    """What the copy depends on: each tensor's storage and version (torch counts every in-place write: an optimiser
    step, ``load_state_dict``; moving to another device makes new storage) and the model's own attributes."""
    tensors = tuple((t.data_ptr(), t._version, t.device) for t in model.state_dict(keep_vars=True).values())
    attributes = tuple(sorted((k, repr(v)) for k, v in vars(model).items() if not k.startswith("_")))
    return tensors, attributes


def _rearranged_copy(model: TransUNet) -> nn.Module:
    fused = copy.deepcopy(model)  # a deep copy draws no random numbers: a training run's random stream is kept
    for module in list(fused.modules()):
        if isinstance(module, nn.Sequential):
            _fold_batchnorm(module)
    on_cpu = next(fused.parameters()).device.type == "cpu"  # measured on the CPU only; other devices keep the rest
    if on_cpu:
        _fold_upsampling(fused)
    for module in list(fused.modules()):
        for name, child in module.named_children():
            if isinstance(child, PixelShuffleUpsample):
                setattr(module, name, child.as_convolution())
    if on_cpu:
        fused = fused.to(memory_format=torch.channels_last)
        for module in list(fused.modules()):
            if isinstance(module, nn.Sequential):
                _fuse_relu(module)
            if _is_pointwise_convolution(module):
                # a 1x1 kernel has one tap, so dilation changes nothing in the result; it does change torch's choice
                # of kernel: with one thread and fewer than 16 B-scans torch runs 1x1 convolutions with its own
                # im2col kernel, 1.3x slower on channels_last maps than oneDNN's, which it picks for dilated ones
                module.dilation = (2, 2)
        # the same network with the decoder levels of FoldedUpsampling; the class is swapped rather than a new
        # model built, since building one would draw random numbers for weights that are replaced at once
        fused.__class__ = InferenceTransUNet
    setattr(fused, _FUSED_MARK, True)
    return fused.eval().requires_grad_(False)


def is_fused_for_inference(model: nn.Module) -> bool:
    """Whether ``model`` is a copy made by :func:`fused_for_inference`."""
    return getattr(model, _FUSED_MARK, False)


class InferenceTransUNet(TransUNet):
    """A TransUNet whose ``upsample[level]`` are :class:`FoldedUpsampling` modules, each doing the level's
    upsampling, concatenation and first convolution + ReLU; ``decoder[level]`` holds the rest of the level."""

    def decode(self, level: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.decoder[level](self.upsample[level](x, skip))


class FoldedUpsampling(nn.Module):
    """``relu(conv3x3(cat(upsample(x), skip)))`` of a decoder level, computed as
    ``relu(transposed_conv(x) + conv3x3(skip))``.

    The upsampler is a transposed convolution with kernel 2 and stride 2; a 3x3 convolution after it is linear too,
    so their composition is one transposed convolution with kernel 2 + 3 - 1 = 4, stride 2 and padding 1, whose
    weights are the products of the two summed over the upsampled channels (computed once, in float64). Per input
    pixel it takes ``16 * in * out`` multiply-adds where the two took ``4 * in * up + 36 * up * out`` (``up``
    upsampled channels): with the paper model's ``in = 2 * up = 2 * out``, 32 against 44, 27 % fewer, and neither
    the upsampled nor the concatenated map is written (issue 22: the forward pass 1.10x faster on one core).

    The upsampler's bias reaches the convolution through every in-bounds tap; at the border the 3x3 convolution
    reads zero padding, not the bias, so the outer rows and columns get the taps that fell outside taken off again
    (``edge_bias``). Float rounding differs from the unfolded layers by a few 1e-6 in the logits.
    """

    def __init__(self, upsample: PixelShuffleUpsample, convolution: nn.Conv2d) -> None:
        super().__init__()
        upsampled = upsample.weight.shape[1]  # the concatenation puts the upsampled channels first
        weight = convolution.weight.detach().to(torch.float64)
        on_upsampled, on_skip = weight[:, :upsampled], weight[:, upsampled:]
        out_channels, in_channels = on_upsampled.shape[0], upsample.weight.shape[0]
        dtype, device = convolution.weight.dtype, convolution.weight.device
        # products[in, out, i, j, dy, dx]: input pixel (r, s) reaches output pixel (2r + i - dy + 1, 2s + j - dx + 1)
        products = torch.einsum("lcij,ocyx->loijyx", upsample.weight.detach().to(torch.float64), on_upsampled)
        composed = torch.zeros(in_channels, out_channels, 4, 4, dtype=torch.float64, device=device)
        for i, dy, j, dx in torch.cartesian_prod(*(torch.arange(n) for n in (2, 3, 2, 3))).tolist():
            composed[:, :, i - dy + 2, j - dx + 2] += products[:, :, i, j, dy, dx]
        # the upsampler's bias through each tap of the 3x3 kernel: every tap in the interior
        taps = torch.einsum("ocyx,c->oyx", on_upsampled, upsample.bias.detach().to(torch.float64))
        bias = taps.sum((1, 2))
        if convolution.bias is not None:
            bias += convolution.bias.detach().to(torch.float64)
        self.transposed = _with_weights(
            nn.ConvTranspose2d, (in_channels, out_channels, 4), dict(stride=2, padding=1), composed, bias, dtype
        )
        self.skip = _with_weights(
            nn.Conv2d, (on_skip.shape[1], out_channels, 3), dict(padding=1, bias=False), on_skip, None, dtype
        )
        # added to the top row, bottom row, left column, right column (the taps outside), then to the four corners
        # (taken off twice above)
        edge = [-taps[:, 0].sum(1), -taps[:, 2].sum(1), -taps[:, :, 0].sum(1), -taps[:, :, 2].sum(1)]
        corners = [taps[:, row, column] for row in (0, 2) for column in (0, 2)]
        self.register_buffer("edge_bias", torch.stack(edge + corners).to(dtype), persistent=False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        upsampled = self.transposed(x)
        top, bottom, left, right, top_left, top_right, bottom_left, bottom_right = self.edge_bias[:, :, None]
        upsampled[:, :, 0] += top
        upsampled[:, :, -1] += bottom
        upsampled[:, :, :, 0] += left
        upsampled[:, :, :, -1] += right
        upsampled[:, :, 0, 0] += top_left[:, 0]
        upsampled[:, :, 0, -1] += top_right[:, 0]
        upsampled[:, :, -1, 0] += bottom_left[:, 0]
        upsampled[:, :, -1, -1] += bottom_right[:, 0]
        return _convolution_add_relu(self.skip, skip, upsampled)


class ConvolutionReLU(nn.Module):
    """``relu(convolution(x))``, with the ReLU inside oneDNN's convolution (a post-op) where torch has it."""

    def __init__(self, convolution: nn.Conv2d) -> None:
        super().__init__()
        self.convolution = convolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convolution
        if not _fused_call(x, c.weight):
            return torch.relu_(c(x))
        return torch.ops.mkldnn._convolution_pointwise(
            x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "relu", [], ""
        )


def _convolution_add_relu(convolution: nn.Conv2d, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``relu(convolution(x) + other)``, the addition and ReLU inside oneDNN's convolution where torch has it."""
    c = convolution
    if not _fused_call(x, c.weight) or other.dtype != x.dtype:
        return torch.relu_(c(x).add_(other))
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, other, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "add", 1.0, "relu", [], ""
    )


def _fused_call(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether to call oneDNN's fused convolution: where torch has it and oneDNN is not turned off
    (``torch.backends.mkldnn.flags(enabled=False)``), on float32 (the fused operator knows no float64), and outside
    CPU autocast (which casts the plain convolutions only: a bf16 trial of the copy runs them all in bf16)."""
    return (
        _onednn_post_ops()
        and torch.backends.mkldnn.enabled
        and x.dtype == weight.dtype == torch.float32
        and not (torch.is_autocast_cpu_enabled() if _OLD_AUTOCAST_QUERY else torch.is_autocast_enabled("cpu"))
    )


# torch 2.3 asks CPU autocast by its own function; later versions take the device type
_OLD_AUTOCAST_QUERY = torch.__version__ < (2, 4)  # a TorchVersion: compared as numbers


@functools.cache
def _onednn_post_ops() -> bool:
    """Whether this torch has oneDNN's fused convolutions (``torch.ops.mkldnn._convolution_pointwise``, which
    torch.compile's CPU backend uses too); without them the same operations run one after the other."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise.binary  # noqa: B018  (raises where the operator is missing)
    except (AttributeError, RuntimeError):
        return False
    return True


def _with_weights(kind, shape, options, weight: torch.Tensor, bias: torch.Tensor | None, dtype) -> nn.Module:
    """A ``kind`` (``nn.Conv2d`` or ``nn.ConvTranspose2d``) layer holding ``weight`` and ``bias`` in ``dtype``;
    skip_init: drawing no random numbers keeps a training run's random stream as it was."""
    layer = nn.utils.skip_init(kind, *shape, **options, device=weight.device, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def _fold_upsampling(model: TransUNet) -> None:
    """Each decoder level's upsampler, concatenation and first convolution + ReLU become a
    :class:`FoldedUpsampling` in ``model.upsample``, leaving the rest of the level in ``model.decoder`` (BatchNorm
    already folded: each level starts convolution, Identity, ReLU)."""
    for level, (upsample, block) in enumerate(zip(model.upsample, model.decoder)):
        convolution, normalisation, relu = block[0], block[1], block[2]
        if not (
            isinstance(upsample, PixelShuffleUpsample)
            and isinstance(convolution, nn.Conv2d)
            and isinstance(normalisation, nn.Identity)
            and isinstance(relu, nn.ReLU)
        ):
            raise ValueError(f"decoder level {level} is not an upsampler then convolution, ReLU: nothing to fold")
    for level, (upsample, block) in enumerate(zip(model.upsample, model.decoder)):
        model.upsample[level] = FoldedUpsampling(upsample, block[0])
        block[0], block[2] = nn.Identity(), nn.Identity()


def _fuse_relu(sequence: nn.Sequential) -> None:
    """Each ``Conv2d`` followed by a ``ReLU`` in ``sequence`` (Identity placeholders between them skipped) becomes a
    :class:`ConvolutionReLU`; the ReLU's place is kept by an ``Identity``."""
    children = [(name, layer) for name, layer in sequence.named_children() if not isinstance(layer, nn.Identity)]
    for (name, layer), (next_name, following) in zip(children, children[1:]):
        if isinstance(layer, nn.Conv2d) and not isinstance(layer.padding, str) and isinstance(following, nn.ReLU):
            setattr(sequence, name, ConvolutionReLU(layer))
            setattr(sequence, next_name, nn.Identity())


def _is_pointwise_convolution(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.padding in ((0, 0), "valid")
        and module.groups == 1
    )


def _fold_batchnorm(sequence: nn.Sequential) -> None:
    """Each ``Conv2d`` directly followed by a ``BatchNorm2d`` in ``sequence`` becomes one convolution with the
    normalisation in its weights and bias; the BatchNorm's place is kept by an ``Identity``."""
    children = list(sequence.named_children())
    for (name, layer), (next_name, following) in zip(children, children[1:]):
        if (
            isinstance(layer, nn.Conv2d)
            and isinstance(following, nn.BatchNorm2d)
            and following.track_running_stats
            and not (layer.training or following.training)  # batch statistics cannot be folded
        ):
            setattr(sequence, name, fuse_conv_bn_eval(layer, following))
            setattr(sequence, next_name, nn.Identity())
