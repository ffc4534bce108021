"""Inference speed and memory: B-scans per second and peak memory for a 49 x 496 x 768 volume: the bundled sample's
real B-scans repeated, so that the padding rule, the shadow rule and the minimum lesion size cost what they cost on a
scan (``--noise``: random pixels of ``--size``, as the figures before issue 22's review were taken).

    python benchmarks/bench_inference.py [--weights PATH] [--bscans 49] [--threads 2] [--batch-sizes 1 4 8]
    python benchmarks/bench_inference.py --compare-old [--rounds 5] [--batch-sizes 4] [--threads 1] [--volumes TIF ...]

On the CPU (``--threads`` threads) and, where an NVIDIA GPU is present, on the GPU in fp32 and bf16 at several
batch sizes; plus the model's GFLOPs per B-scan, to hold the GPU figure against the card's peak. Prints
figures; asserts nothing (these machines are shared: compare ratios within one run).

``--compare-old`` times prediction as it was before issue 22 (``nn.ConvTranspose2d`` upsamplers, the model run as
it is) against today's (the inference copy: BatchNorm folded, channels_last, each upsampler folded into its decoder
level's first convolution, ReLU inside the convolutions), interleaved round by round on the same volume, and prints
both medians, their ratio and the pixels whose mask differs between the two, on the volume, on the sample scan and
on each of ``--volumes`` (real scans, e.g. the shared data's ``*_images.tif``). Both sides share today's
normalisation, padding rule and minimum lesion size: only the network's arithmetic differs.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from napari_octfluid import inference
from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.model import (
    MODEL_CONFIGS,
    TransUNet,
    TransUNetConfig,
    count_parameters,
    fused_for_inference,
    load_model,
)
from napari_octfluid.weights import default_weights_path


class TransposedConvolutionTransUNet(TransUNet):
    """The TransUNet as octfluid built it before issue 22, for ``--compare-old``: ``nn.ConvTranspose2d(k=2,
    stride=2)`` upsamplers, whose weights have the same names and shapes as today's upsamplers."""

    def __init__(self, config: TransUNetConfig) -> None:
        super().__init__(config)
        filters = config.filter_num
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2) for i in reversed(range(len(filters) - 1))
        )


def labels_and_fluid_before(logits: torch.Tensor, threshold: float | None = None):
    """``inference.labels_and_fluid`` before issue 22 (the same bits; the two-class path now runs 4x faster)."""
    background = logits[:, 0]
    best_fluid, best_class = logits[:, 1:].max(dim=1)
    labels = torch.where(best_fluid > background, best_class + 1, 0).to(torch.uint8)
    fluid = 1.0 - 1.0 / torch.exp(logits - background.unsqueeze(1)).sum(dim=1)
    if threshold is not None and logits.shape[1] == 2:
        labels = (fluid > threshold).to(torch.uint8)
    return labels, fluid


@contextlib.contextmanager
def prediction_before_issue_22():
    """``inference.predict`` as it was: the model itself run (no inference copy), labels and fluid as they were
    computed."""
    made_copy, labelled = inference.fused_for_inference, inference.labels_and_fluid
    inference.fused_for_inference, inference.labels_and_fluid = (lambda model: model), labels_and_fluid_before
    try:
        yield
    finally:
        inference.fused_for_inference, inference.labels_and_fluid = made_copy, labelled


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def gflops_per_bscan(model: TransUNet, height: int, width: int) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, height, width))
    return counter.get_total_flops() / 1e9


def time_cpu(model, volume, batch_size):
    run_to_end(predict(volume[:batch_size], model, "cpu", batch_size))  # warm-up
    before = rss_mb()
    start = time.perf_counter()
    run_to_end(predict(volume, model, "cpu", batch_size))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return len(volume) / seconds, peak, before


def time_cuda(model, volume, batch_size, dtype):
    model = fused_for_inference(model.cuda().eval())  # what predict runs
    x = torch.rand(batch_size, 1, *volume.shape[1:], device="cuda")
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        repeats = max(3, 2 * len(volume) // batch_size)
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return repeats * batch_size / seconds, torch.cuda.max_memory_allocated() / 2**20


def old_model_of(model: TransUNet) -> TransposedConvolutionTransUNet:
    old = TransposedConvolutionTransUNet(model.config)
    old.load_state_dict(model.state_dict())
    # the same rules around the network: only its arithmetic differs
    old.decision_threshold, old.min_lesion_pixels = model.decision_threshold, model.min_lesion_pixels
    old.axial_spacing_mm = model.axial_spacing_mm
    return old.eval()


def predict_old(volume, old, batch_size):
    with prediction_before_issue_22():
        return run_to_end(predict(volume, old, "cpu", batch_size))[1]


def mask_differences(label: str, old, new, threshold: float | None) -> None:
    differing = old.labels != new.labels
    gap = np.abs(old.fluid_probability - new.fluid_probability)
    print(
        f"{label}: {int(differing.sum())} of {differing.size:,} pixels differ between the old and new masks "
        f"(fluid pixels: old {int(old.labels.astype(bool).sum()):,}, new {int(new.labels.astype(bool).sum()):,}); "
        f"largest probability difference {gap.max():.2e}"
    )
    for index in np.argwhere(differing)[:10]:
        where = tuple(int(i) for i in index)
        print(
            f"    pixel {where}: P(fluid) old {old.fluid_probability[where]:.9f}, "
            f"new {new.fluid_probability[where]:.9f}, threshold {threshold}"
        )


def compare_old(model: TransUNet, volume: np.ndarray, batch_sizes, rounds: int, threads: int, volumes=()) -> None:
    """Old and new prediction timed in alternating order, round after round, and their masks compared (on the
    sample scan and ``volumes`` too)."""
    from napari_octfluid._sample_data import SAMPLE_SCAN
    from napari_octfluid.io import read_volume

    old = old_model_of(model)
    threshold = model.decision_threshold
    for path in (SAMPLE_SCAN, *volumes):
        scan = read_volume(path).data
        mask_differences(
            f"{path.name if path == SAMPLE_SCAN else path} {'x'.join(map(str, scan.shape))}",
            predict_old(scan, old, 4),
            run_to_end(predict(scan, model, "cpu", 4))[1],
            threshold,
        )
    for batch_size in batch_sizes:
        predict_old(volume[:batch_size], old, batch_size)  # warm-up, both
        run_to_end(predict(volume[:batch_size], model, "cpu", batch_size))
        # B-scans per second of wall-clock time, and per second of this process's CPU time: on a shared machine
        # other processes stretch the first; with one thread the second counts only the work done
        rates: dict[str, dict[str, list[float]]] = {"old": {"wall": [], "cpu": []}, "new": {"wall": [], "cpu": []}}
        for round_index in range(rounds):
            order = ("old", "new") if round_index % 2 == 0 else ("new", "old")  # a drifting load hits both alike
            for variant in order:
                wall, cpu = time.perf_counter(), time.process_time()
                if variant == "old":
                    old_result = predict_old(volume, old, batch_size)
                else:
                    new_result = run_to_end(predict(volume, model, "cpu", batch_size))[1]
                rates[variant]["wall"].append(len(volume) / (time.perf_counter() - wall))
                rates[variant]["cpu"].append(len(volume) / (time.process_time() - cpu))
        for clock in ("wall", "cpu"):
            old_rates, new_rates = rates["old"][clock], rates["new"][clock]
            old_rate, new_rate = statistics.median(old_rates), statistics.median(new_rates)
            per_round = statistics.median(new / old for new, old in zip(new_rates, old_rates))
            unit = "B-scans/s" if clock == "wall" else "B-scans/CPU-s"
            print(
                f"cpu  {threads} threads  batch {batch_size:3d}  {clock:4s}: old {old_rate:6.2f}, new {new_rate:6.2f} "
                f"{unit} (medians of {rounds} rounds): {new_rate / old_rate:.3f}x; median of the per-round ratios "
                f"{per_round:.3f}x (old {' '.join(f'{r:.2f}' for r in old_rates)}; "
                f"new {' '.join(f'{r:.2f}' for r in new_rates)})"
            )
        mask_differences(f"    volume {'x'.join(map(str, volume.shape))}", old_result, new_result, threshold)


def timing_volume(noise: bool, bscans: int, height: int, width: int) -> np.ndarray:
    """The volume timed: the bundled sample's real B-scans repeated to ``bscans`` (padding, tissue and fluid, so
    the rules around the network cost what they cost on a scan), or random pixels of ``height x width``, on which
    the padding rule finds nothing and no fluid is left to clean."""
    if noise:
        return np.random.default_rng(0).integers(0, 256, (bscans, height, width), dtype=np.uint8)
    from napari_octfluid._sample_data import SAMPLE_SCAN
    from napari_octfluid.io import read_volume

    scan = read_volume(SAMPLE_SCAN).data
    return np.concatenate([scan] * -(-bscans // len(scan)))[:bscans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="checkpoint (default: shipped weights, else an untrained paper model)")
    parser.add_argument("--bscans", type=int, default=49)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--size", type=int, nargs=2, default=(496, 768), metavar=("H", "W"), help="B-scan size of --noise and GFLOPs"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=(1, 4, 8), metavar="N")
    parser.add_argument("--compare-old", action="store_true", help="time prediction before issue 22 against now")
    parser.add_argument(
        "--noise", action="store_true", help="time on random pixels of --size (no padding, no fluid to clean)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="--compare-old: interleaved rounds per batch size")
    parser.add_argument("--volumes", type=Path, nargs="*", default=(), help="--compare-old: scans to compare masks on")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = args.weights or default_weights_path()
    model = load_model(weights)[0] if weights else TransUNet(MODEL_CONFIGS["paper"]).eval()
    height, width = args.size
    volume = timing_volume(args.noise, args.bscans, height, width)
    print(
        f"model: {weights or 'untrained paper config'}, {count_parameters(model) / 1e6:.2f} M parameters, "
        f"{gflops_per_bscan(model, height, width):.2f} GFLOP per {height}x{width} B-scan"
    )
    print(f"volume: {args.bscans} x {height} x {width} uint8 ({volume.nbytes / 2**20:.0f} MB)")
    if args.compare_old:
        compare_old(model, volume, args.batch_sizes, args.rounds, args.threads, args.volumes)
        return
    for batch_size in args.batch_sizes:
        rate, peak, before = time_cpu(model, volume, batch_size)
        print(
            f"cpu  {args.threads} threads  batch {batch_size:3d}: {rate:7.2f} B-scans/s, "
            f"peak RSS {peak:.0f} MB (process held {before:.0f} MB before)"
        )
    if torch.cuda.is_available():
        print(f"gpu: {torch.cuda.get_device_name()}")
        for dtype in (torch.float32, torch.bfloat16):
            for batch_size in (8, 32, 128):
                rate, peak = time_cuda(model, volume, batch_size, dtype)
                print(
                    f"cuda {str(dtype).split('.')[-1]:8s} batch {batch_size:3d}: {rate:8.1f} B-scans/s, "
                    f"peak GPU memory {peak:.0f} MB"
                )
    else:
        print("cuda: no NVIDIA GPU here")


if __name__ == "__main__":
    main()
