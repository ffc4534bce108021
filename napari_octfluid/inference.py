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
from .axial import model_axial_spacing, model_rows, resample_rows, scan_axial_spacing
from .devices import default_batch_size, resolve_device, step_down_after_out_of_memory
from .events import Notice, run_to_end  # noqa: F401  (run_to_end kept importable from here)
from .memory import check_allocation, prediction_bytes
from .min_lesion import OFF, remove_small_lesions
from .model import TransUNet, fused_for_inference
from .preprocess import check_bscans, nonfinite_bscans, normalize_bscans, padding_mask
from .shadow_streaks import remove_shadow_streaks


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


@dataclass
class PredictResult:
    labels: np.ndarray  # uint8 [Z, Y, X]: argmax class per pixel
    fluid_probability: np.ndarray  # float32 [Z, Y, X]: 1 - P(background)
    device: str
    seconds: float


PredictEvent = PredictStarted | PredictProgress | Notice


def forward(
    model: TransUNet, normalised: np.ndarray, device: torch.device, outside: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The one forward pass of octfluid, shared by prediction, validation during training and calibration:
    labels (uint8, with the model's decision threshold) and fluid probability (float32) for normalised B-scans
    ``[N, H, W]`` (see :func:`~napari_octfluid.preprocess.normalize_bscans`), on ``device`` (bf16 autocast on
    CUDA). Pixels where ``outside`` is True (export padding, blanked background:
    :func:`~napari_octfluid.preprocess.padding_mask`) are never fluid.

    It runs the model's inference copy (:func:`~napari_octfluid.model.fused_for_inference`: BatchNorm folded; on
    the CPU channels_last, upsamplers folded into the decoder's convolutions, ReLU fused; the model itself is left
    as it is)."""
    model = fused_for_inference(model)
    x = torch.from_numpy(np.ascontiguousarray(normalised, dtype=np.float32)).unsqueeze(1).to(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(x).float()
        labels, fluid = labels_and_fluid(logits, getattr(model, "decision_threshold", None))
    labels, fluid = labels.cpu().numpy(), fluid.cpu().numpy()
    if outside is not None:
        labels[outside], fluid[outside] = 0, 0.0
    return labels, fluid


def forward_bscans(model: TransUNet, data, device: torch.device) -> Generator[tuple[np.ndarray, np.ndarray]]:
    """:func:`forward` over every B-scan of a ``training.data.BscanSet`` (normalised B-scans of their own sizes,
    with their padding masks): labels (with the shadow-streak rule, as prediction has it) and fluid probability of
    each in turn. Validation and calibration use it."""
    model = fused_for_inference(model.eval())  # once, not once per B-scan inside forward()
    for index, image in enumerate(data.images):
        outside = None if data.outside is None else data.outside[index][None]
        labels, fluid = forward(model, image[None], device, outside)
        yield remove_shadow_streaks(labels, image[None])[0], fluid[0]


def _forward(
    model: TransUNet, bscans: np.ndarray, device: torch.device, min_pixels: int = OFF, rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw B-scans through :func:`forward`, with the padding rule (left out of the normalisation statistics too),
    the shadow-streak rule (:mod:`~napari_octfluid.shadow_streaks`) and the minimum lesion size, at ``rows`` rows
    (the model's axial pixel size, :mod:`~napari_octfluid.axial`) and back: labels nearest, fluid probability
    linear.

    The padding is found on the scan's own rows, where its flat borders are as the file has them, and carried to the
    model's grid with nearest neighbour; it is applied again on the way back. The minimum lesion size is in the
    model's pixels, so it is applied before resampling back.

    The numpy steps run in line with the model. Run on a helper thread while the model worked on the next batch,
    they gained nothing on a 2-core CPU (``benchmarks/bench_versions.py``, 2 threads: 0.98 times the B-scans per
    second and 9 % more CPU time, the helper and torch's threads competing for the cores)."""
    outside = padding_mask(bscans)
    height = bscans.shape[1]
    if rows is None or rows == height:
        normalised = normalize_bscans(bscans, outside)
        labels, fluid = forward(model, normalised, device, outside)
        return remove_small_lesions(remove_shadow_streaks(labels, normalised), min_pixels), fluid
    resampled, resampled_outside = resample_rows(bscans, rows, order=1), resample_rows(outside, rows, order=0)
    normalised = normalize_bscans(resampled, resampled_outside)
    labels, fluid = forward(model, normalised, device, resampled_outside)
    labels = resample_rows(remove_small_lesions(remove_shadow_streaks(labels, normalised), min_pixels), height, order=0)
    fluid = resample_rows(fluid, height, order=1)
    labels[outside], fluid[outside] = 0, 0.0
    return labels, fluid


def labels_and_fluid(logits: torch.Tensor, threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Class per pixel (uint8) and fluid probability 1 - P(background) from logits ``[N, C, H, W]``.

    The class is the most probable one, or, for a two-class model with a ``threshold``, fluid where its
    probability exceeds the threshold.

    Written against the background channel rather than as softmax + argmax over the class axis, which is
    4-7x slower on a CPU at B-scan size; exp overflow gives P(background) = 0, the right limit.
    """
    if logits.shape[1] == 2:
        # the same operations with the background's own term, exp(0) = 1, written as the constant: the same bits
        # in half the time of the general form below; in place, in one buffer (1 - p is -p + 1 to the last bit)
        fluid = torch.sub(logits[:, 1], logits[:, 0]).exp_().add_(1.0).reciprocal_().neg_().add_(1.0)
        labels = fluid > threshold if threshold is not None else logits[:, 1] > logits[:, 0]
        return labels.view(torch.uint8), fluid  # a bool is one byte, 0 or 1: the same bytes as uint8
    background = logits[:, 0]
    best_fluid, best_class = logits[:, 1:].max(dim=1)
    labels = torch.where(best_fluid > background, best_class + 1, 0).to(torch.uint8)
    fluid = 1.0 - 1.0 / torch.exp(logits - background.unsqueeze(1)).sum(dim=1)
    return labels, fluid


def min_lesion_pixels_of(model: TransUNet, override: int | None = None) -> int:
    """The minimum lesion size prediction applies: ``override`` when given, else the one calibrated with the model
    (``model.min_lesion_pixels``, read from its checkpoint), else off."""
    if override is not None:
        return max(int(override), OFF)
    return int(getattr(model, "min_lesion_pixels", None) or OFF)


def predict(
    volume: np.ndarray,
    model: TransUNet,
    device: str = "auto",
    batch_size: int | None = None,
    min_lesion_pixels: int | None = None,
    axial_spacing_mm: float | None = None,
) -> Generator[PredictEvent, None, PredictResult]:
    """Segment every B-scan of ``volume[Z, Y, X]`` (or one 2D B-scan).

    ``axial_spacing_mm`` is the scan's pixel size along depth, where its file gives it: when it is more than
    :data:`~napari_octfluid.axial.TOLERANCE` away from the model's (``model.axial_spacing_mm``, the training scans'),
    each batch of B-scans is resampled to the model's axial pixel size, segmented, and the mask (nearest) and
    probability (linear) brought back to the scan's rows (:mod:`~napari_octfluid.axial`). None: as it is.

    The mask is cleaned by two rules: export padding and other flat borders are never fluid
    (:func:`~napari_octfluid.preprocess.padding_mask`), and fluid regions of a B-scan smaller than
    ``min_lesion_pixels`` (default: the model's calibrated size, see :func:`min_lesion_pixels_of`; 0: off; in the
    model's pixels) are removed (:mod:`~napari_octfluid.min_lesion`). The fluid probability is the model's, except
    in the padding.

    On CUDA it runs in bfloat16 autocast; when memory runs out the batch is halved and retried, and as a
    last resort the rest runs on the CPU, each announced by a :class:`~napari_octfluid.events.Notice`.
    """
    # refused before the result arrays exist: labels + probabilities take five bytes a voxel
    check_allocation(prediction_bytes(np.shape(volume), getattr(model, "config", None)), "Segmenting this scan")
    data = check_bscans(volume)
    target = resolve_device(device)
    tune_glibc_malloc()  # helps the CPU path; harmless for the others
    batch = batch_size or default_batch_size(target)
    min_pixels = min_lesion_pixels_of(model, min_lesion_pixels)
    spacing = scan_axial_spacing(model, axial_spacing_mm)
    rows = model_rows(data.shape[1], spacing, model_axial_spacing(model))
    model = model.to(target).eval()
    inference_copy = fused_for_inference(model)  # once for the whole volume (see forward)
    labels = np.zeros(data.shape, np.uint8)
    fluid = np.zeros(data.shape, np.float32)
    start = time.perf_counter()
    yield PredictStarted(str(target), batch, len(data))
    if axial_spacing_mm is None and spacing is not None:  # said, since nothing else shows it
        yield Notice(
            f"The scan's file gives no axial pixel size: predicted as {spacing * 1000:.2f} um per row, the size "
            "this model was fitted to on the corrections of its device."
        )
    damaged = nonfinite_bscans(data)
    if damaged:
        shown = ", ".join(map(str, damaged[:10])) + (" ..." if len(damaged) > 10 else "")
        yield Notice(
            f"{len(damaged)} B-scan(s) hold NaN or infinite pixels ({shown}): those pixels are treated as background."
        )
    done = 0
    while done < len(data):
        try:
            stop = min(done + batch, len(data))
            labels[done:stop], fluid[done:stop] = _forward(inference_copy, data[done:stop], target, min_pixels, rows)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            target, batch, message = step_down_after_out_of_memory(error, target, batch, "B-scan")
            model = model.to(target)
            inference_copy = fused_for_inference(model)  # made again: its memory layout depends on the device
            yield Notice(message)
            continue
        done = stop
        yield PredictProgress(done, len(data), time.perf_counter() - start)
    return PredictResult(labels, fluid, str(target), time.perf_counter() - start)
