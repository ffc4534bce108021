"""Training on several processes at once (DistributedDataParallel under ``torchrun``) with the results of one.

One process trains on a global batch of ``batch_size`` crops. N processes reproduce its steps as follows:

- every process draws the same global batch (crops and augmentation come from the same seeded generators) and
  keeps its share, crops ``rank::N`` (:func:`local_share`): the crops, their augmentation and their order are those
  of the single process, and drawing a few crops more than it trains on costs little next to a step;
- BatchNorm normalises with the statistics of the global batch (``torch.nn.SyncBatchNorm`` on GPUs; on the CPU,
  where torch's refuses to run, :class:`GlobalBatchNorm2d`), so the forward pass is the single process's. The
  alternative, plain BatchNorm with DDP's broadcast of rank 0's running statistics, normalises each share by its
  own statistics in training (Ioffe & Szegedy 2015, Algorithm 1: those of the mini-batch), which with shares of
  2 crops is another model;
- DistributedDataParallel averages the gradients of the processes, while the single process takes the gradient of
  its loss over the whole batch. Each process therefore scales its loss by its share of the labelled pixels
  (:func:`labelled_share_weight`). For a loss that is a mean over the labelled pixels of the batch
  (``losses/_functional.py: pixel_mean``: ce, bce, focal, label_smoothing, dual_focal, adaptive_dual_focal) the
  steps are the single process's, up to the order of floating-point sums, however many pixels rotation and padding
  leave unlabelled in each share. They are not for losses built on statistics of their batch: dice, jaccard,
  tversky, focal_tversky, generalized_dice and sensitivity_specificity pool their soft counts over the batch
  (Milletari et al. 2016, Eq. 1; Salehi et al. 2017), exp_log weighs classes by their frequency in the batch, and
  wbce takes its fluid weight from the batch (Sudre et al. 2017). Each process then pools its own share, and the
  gradient is that of the labelled-pixel-weighted mean of the per-share losses, not that of the global batch's
  loss: with 2 shares, the pooled Dice of each half of the batch instead of the Dice of the whole. The composite
  loss (Darooei et al. 2023, Eq. 5: dice + focal_tversky + wbce) is of this kind: its runs are alike in
  expectation, not step for step, and the closer the more crops each process has.

Progress figures (loss, its terms, the pooled training confusion counts) are reduced over the processes so that
rank 0 reports the global batch; validation splits its B-scans over the processes and adds up their counts.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..devices import DeviceUnavailableError
from ..distributed import DistributedContext
from ..metrics import Confusion
from .data import BscanSet


def local_share(batch, rank: int, world_size: int):
    """Process ``rank``'s share of a global ``batch`` (tensor or array, crops along the first axis): crops
    ``rank``, ``rank + world_size``, ... of it. The shares of all processes hold every crop once."""
    return batch[rank::world_size]


def labelled_share_weight(local_labelled, total_labelled, world_size: int):
    """The factor on one process's loss that makes DistributedDataParallel's mean of gradients the gradient of a
    pixel-mean loss over the global batch: ``world_size * local_labelled / total_labelled``.

    With L_r = S_r / n_r the mean over the n_r labelled pixels of share r, (1/N) sum_r (N n_r / n) grad L_r =
    grad (sum_r S_r) / n, the gradient of the global mean. Where no pixel of the global batch is labelled the
    losses carry nothing to weigh and the factor is 1."""
    return torch.where(total_labelled > 0, world_size * local_labelled / total_labelled.clamp_min(1), 1.0)


class _SumOverProcesses(torch.autograd.Function):
    """The sum of a tensor over the processes, differentiable: the gradient of each process's input is the sum of
    the gradients of every process's output (each output is the same sum). torch.distributed.nn's version of this
    is deprecated, and its successor in torch.distributed._functional_collectives is private."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def _summed_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    return _SumOverProcesses.apply(tensor)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch of all processes, for the CPU, where
    ``torch.nn.SyncBatchNorm`` refuses to run. Mean and variance by two all-reduces (the sum, then the sum of
    squared deviations from the global mean: the two-pass form, which keeps its precision where the mean is large
    next to the spread), through a differentiable all-reduce so that the gradient reaches every
    process's share as in one process (Ioffe & Szegedy 2015, Algorithm 1; running variance unbiased as torch's).
    Without a process group, or in evaluation mode, it is ``BatchNorm2d``."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        self._check_input_dim(input)
        channels, dims = input.shape[1], (0, 2, 3)
        local_count = input.new_tensor([input.numel() / channels])
        sums = _summed_over_processes(torch.cat([input.sum(dims), local_count]))
        count = sums[-1]
        mean = sums[:channels] / count
        centred = input - mean.view(1, -1, 1, 1)
        variance = _summed_over_processes(centred.square().sum(dims)) / count
        if self.track_running_stats:
            self._update_running_statistics(mean.detach(), variance.detach(), count)
        output = centred * torch.rsqrt(variance + self.eps).view(1, -1, 1, 1)
        if self.affine:
            output = output * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return output

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, variance: torch.Tensor, count: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = variance * count / (count - 1).clamp_min(1)
        self.running_mean.mul_(1 - momentum).add_(momentum * mean)
        self.running_var.mul_(1 - momentum).add_(momentum * unbiased)


def with_global_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with its ``BatchNorm2d`` layers normalising over the batch of all processes (their weights and
    statistics kept): torch's fused ``SyncBatchNorm`` on a GPU, :class:`GlobalBatchNorm2d` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for child in model.children():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = GlobalBatchNorm2d  # a subclass with no state of its own: the layer stays as it is
        else:
            with_global_batchnorm(child, device)
    return model


def with_plain_batchnorm(model: nn.Module) -> nn.Module:
    """``model`` (changed in place) with ``BatchNorm2d`` again where :func:`with_global_batchnorm` put its layers,
    so that the model a run returns behaves the same with or without a process group."""
    for name, child in model.named_children():
        if isinstance(child, (nn.SyncBatchNorm, GlobalBatchNorm2d)):
            state = child.state_dict()
            device = next(iter(state.values())).device if state else None
            plain = nn.BatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats, device
            )
            plain.load_state_dict(state)
            plain.train(child.training)
            setattr(model, name, plain)
        else:
            with_plain_batchnorm(child)
    return model


class DataParallel:
    """This process's part in a data-parallel training run: its share of each batch, the collective steps that keep
    the processes in step, and what rank 0 reports. Every method that communicates must be called by all processes
    in the same order."""

    def __init__(self, context: DistributedContext, device: torch.device, batch_size: int) -> None:
        if not dist.is_initialized():
            raise RuntimeError("Training on several processes needs their process group: DistributedContext.init().")
        if device.type not in ("cpu", "cuda"):
            raise DeviceUnavailableError(
                f"{device.type.upper()} cannot be shared by several processes: run one process, or use the CPU."
            )
        if batch_size < context.world_size:
            raise ValueError(
                f"The batch of {batch_size} crops is split over {context.world_size} processes: give each at "
                f"least one (a batch size of at least {context.world_size})."
            )
        self.context, self.device = context, device

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    @property
    def size(self) -> int:
        """The number of processes."""
        return self.context.world_size

    def local_share(self, batch):
        return local_share(batch, self.context.rank, self.size)

    def wrap(self, module: nn.Module) -> DistributedDataParallel:
        """``module`` under DistributedDataParallel. Its default broadcast of rank 0's buffers before each forward
        pass is kept: with the global batch's statistics in every BatchNorm layer they are equal on every process
        already, and the broadcast (a few kilobytes) keeps them so whatever rounding does."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def share_weight(self, labels: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The factor on this process's loss (:func:`labelled_share_weight`) and its number of labelled pixels."""
        local = (labels != ignore_index).sum().to(torch.float64).reshape(1)
        total = local.clone()
        dist.all_reduce(total)
        weight = labelled_share_weight(local, total, self.size)
        return weight.reshape(()).float(), local

    def reduce_step(
        self, loss: float, terms: dict[str, float], counts: Confusion, labelled: torch.Tensor
    ) -> tuple[float, dict[str, float], Confusion]:
        """The loss and its terms for the global batch, and its pooled confusion counts, in one all-reduce. The
        figures are the processes' means weighted by their labelled pixels: a pixel-mean loss's value over the global
        batch (see the module's docstring); where no pixel is labelled, their plain mean."""
        figures = [loss, *terms.values()]
        local = float(labelled.item())
        values = [
            *(local * figure for figure in figures),
            *figures,
            local,
            int(counts.tp),
            int(counts.fp),
            int(counts.fn),
        ]
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        total = total.tolist()
        weighted, plain, (labelled_total, tp, fp, fn) = total[: len(figures)], total[len(figures) : -4], total[-4:]
        means = [w / labelled_total for w in weighted] if labelled_total > 0 else [p / self.size for p in plain]
        reduced_counts = Confusion(*(np.array(int(round(count))) for count in (tp, fp, fn)))
        return means[0], dict(zip(terms, means[1:])), reduced_counts

    def reduce_confusion(self, counts: Confusion) -> Confusion:
        """Confusion counts added up over the processes (validation on their shares of the B-scans)."""
        total = torch.tensor([int(counts.tp), int(counts.fp), int(counts.fn)], dtype=torch.int64, device=self.device)
        dist.all_reduce(total)
        return Confusion(*(np.array(int(count)) for count in total.tolist()))

    def shard(self, data: BscanSet) -> BscanSet:
        """This process's share of whole B-scans (validation): B-scans ``rank::world_size``."""
        rank, size = self.context.rank, self.size
        outside = None if data.outside is None else data.outside[rank::size]
        return BscanSet(data.images[rank::size], data.labels[rank::size], data.sources[rank::size], outside)

    def agreed_seconds(self, seconds: float) -> float:
        """Rank 0's reading of the clock, on every process: decisions taken by the clock (a time budget's learning
        rate and end) must be the same on all of them, or their weights drift apart and a collective waits for
        ever."""
        reading = torch.tensor([seconds], dtype=torch.float64, device=self.device)
        dist.broadcast(reading, src=0)
        return float(reading.item())

    def out_of_memory_error(self) -> MemoryError:
        """What to raise when a step runs out of memory: one process cannot halve its share alone (the others would
        wait for it in the next collective), so the run ends with what to do."""
        return MemoryError(
            f"Out of memory on {self.device} (rank {self.context.rank}) with the batch of crops split over "
            f"{self.context.world_size} processes: give a smaller --batch-size, or more processes."
        )
