"""Prediction: a volume streamed through the model in batches of B-scans, as a generator of progress events.

Drive it directly (tests, CLI) or from napari's ``thread_worker`` (widget); the return value of the
generator is the :class:`PredictResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generator

import numpy as np
import torch

from ._malloc import tune_glibc_malloc
from .devices import default_batch_size, is_out_of_memory, resolve_device
from .events import run_to_end  # noqa: F401  (kept importable from here)
from .model import TransUNet
from .preprocess import check_bscans, nonfinite_bscans, normalize_bscans, padding_mask


@dataclass(frozen=True)
class PredictStarted:
    device: str
    batch_size: int
    n_bscans: int


@dataclass(frozen=True)
class PredictProgress:
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class PredictNotice:
    """Something the user should know, e.g. a smaller batch or a move to the CPU after running out of memory."""

    message: str


@dataclass
class PredictResult:
    labels: np.ndarray  # uint8 [Z, Y, X]: argmax class per pixel
    fluid_probability: np.ndarray  # float32 [Z, Y, X]: 1 - P(background)
    device: str
    seconds: float


PredictEvent = PredictStarted | PredictProgress | PredictNotice


def _forward(model: TransUNet, bscans: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(normalize_bscans(bscans)).unsqueeze(1).to(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(x).float()
        labels, fluid = labels_and_fluid(logits, model.decision_threshold)
    labels, fluid = labels.cpu().numpy(), fluid.cpu().numpy()
    outside = padding_mask(bscans)  # export padding and blanked background are never fluid
    labels[outside], fluid[outside] = 0, 0.0
    return labels, fluid


def labels_and_fluid(logits: torch.Tensor, threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Class per pixel (uint8) and fluid probability 1 - P(background) from logits ``[N, C, H, W]``.

    The class is the most probable one, or, for a two-class model with a ``threshold``, fluid where its
    probability exceeds the threshold.

    Written against the background channel rather than as softmax + argmax over the class axis, which is
    4-7x slower on a CPU at B-scan size; exp overflow gives P(background) = 0, the right limit.
    """
    background = logits[:, 0]
    best_fluid, best_class = logits[:, 1:].max(dim=1)
    labels = torch.where(best_fluid > background, best_class + 1, 0).to(torch.uint8)
    fluid = 1.0 - 1.0 / torch.exp(logits - background.unsqueeze(1)).sum(dim=1)
    if threshold is not None and logits.shape[1] == 2:
        labels = (fluid > threshold).to(torch.uint8)
    return labels, fluid


def predict(volume: np.ndarray, model: TransUNet, device: str = "auto",
            batch_size: int | None = None) -> Generator[PredictEvent, None, PredictResult]:
    """Segment every B-scan of ``volume[Z, Y, X]`` (or one 2D B-scan).

    On CUDA it runs in bfloat16 autocast; when memory runs out the batch is halved and retried, and as a
    last resort the rest runs on the CPU, each announced by a :class:`PredictNotice`.
    """
    data = check_bscans(volume)
    target = resolve_device(device)
    tune_glibc_malloc()  # helps the CPU path; harmless for the others
    batch = batch_size or default_batch_size(target)
    model = model.to(target).eval()
    labels = np.zeros(data.shape, np.uint8)
    fluid = np.zeros(data.shape, np.float32)
    start = time.perf_counter()
    yield PredictStarted(str(target), batch, len(data))
    damaged = nonfinite_bscans(data)
    if damaged:
        shown = ", ".join(map(str, damaged[:10])) + (" ..." if len(damaged) > 10 else "")
        yield PredictNotice(f"{len(damaged)} B-scan(s) hold NaN or infinite pixels ({shown}): those pixels are "
                            "treated as background.")
    done = 0
    while done < len(data):
        try:
            stop = min(done + batch, len(data))
            labels[done:stop], fluid[done:stop] = _forward(model, data[done:stop], target)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not is_out_of_memory(error):
                raise
            if target.type == "cuda":
                torch.cuda.empty_cache()
            if batch > 1:
                batch //= 2
                yield PredictNotice(f"Out of memory on {target}: retrying with batch size {batch}.")
            elif target.type != "cpu":
                target = torch.device("cpu")
                model = model.to(target)
                yield PredictNotice("Out of memory even one B-scan at a time: continuing on the CPU (slower).")
            else:
                raise MemoryError("Not enough memory to segment even one B-scan on the CPU: "
                                  "close other programs or crop the scan.") from error
            continue
        done = stop
        yield PredictProgress(done, len(data), time.perf_counter() - start)
    return PredictResult(labels, fluid, str(target), time.perf_counter() - start)
