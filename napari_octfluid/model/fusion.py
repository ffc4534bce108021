"""The inference copy of a TransUNet: the same map, rearranged for speed (issue 22).

:func:`fused_for_inference` returns a separate copy that prediction runs (``inference.predict`` and ``forward``);
the model itself is never changed, so training, fine-tuning (which needs its BatchNorm layers, and
``freeze_batchnorm`` finds them) and saving see the network as it was built.

In the copy:

- each BatchNorm is folded into the convolution before it (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass
  over every feature map less;
- the upsamplers are plain ``Conv2d`` + ``PixelShuffle`` modules with their weights permuted once, not at each call;
- on the CPU, the weights are channels_last, so the convolutions run in oneDNN's native layout instead of
  reordering every input and output (the largest gain), and the 1x1 convolutions run in oneDNN too.

The logits equal the model's up to float rounding (about 1e-6, see ``benchmarks/bench_inference.py --compare-old``).
"""

from __future__ import annotations

import copy

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
    may not accept channels_last tensors)."""
    if is_fused_for_inference(model) or model.training or not isinstance(model, TransUNet):
        return model
    fused = copy.deepcopy(model)  # a deep copy draws no random numbers: a training run's random stream is kept
    for module in list(fused.modules()):
        if isinstance(module, nn.Sequential):
            _fold_batchnorm(module)
        for name, child in module.named_children():
            if isinstance(child, PixelShuffleUpsample):
                setattr(module, name, child.as_convolution())
    if next(fused.parameters()).device.type == "cpu":  # measured on the CPU only; other devices keep their layout
        fused = fused.to(memory_format=torch.channels_last)
        for module in fused.modules():
            if _is_pointwise_convolution(module):
                # a 1x1 kernel has one tap, so dilation changes nothing in the result; it does change torch's choice
                # of kernel: with one thread and fewer than 16 B-scans torch runs 1x1 convolutions with its own
                # im2col kernel, 1.3x slower on channels_last maps than oneDNN's, which it picks for dilated ones
                module.dilation = (2, 2)
    setattr(fused, _FUSED_MARK, True)
    return fused.eval().requires_grad_(False)


def is_fused_for_inference(model: nn.Module) -> bool:
    """Whether ``model`` is a copy made by :func:`fused_for_inference`."""
    return getattr(model, _FUSED_MARK, False)


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
