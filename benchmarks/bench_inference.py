"""Inference speed and memory: B-scans per second and peak memory for a 49 x 496 x 768 volume.

    python benchmarks/bench_inference.py [--weights PATH] [--bscans 49] [--threads 2]

On the CPU (``--threads`` threads) and, where an NVIDIA GPU is present, on the GPU in fp32 and bf16 at several
batch sizes; plus the model's GFLOPs per B-scan, to hold the GPU figure against the card's peak. Prints
figures; asserts nothing (these machines are shared: compare ratios within one run).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, count_parameters, load_model
from napari_octfluid.weights import default_weights_path


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
    model = model.cuda().eval()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="checkpoint (default: shipped weights, else an untrained paper model)")
    parser.add_argument("--bscans", type=int, default=49)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(496, 768), metavar=("H", "W"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = args.weights or default_weights_path()
    model = load_model(weights)[0] if weights else TransUNet(MODEL_CONFIGS["paper"]).eval()
    height, width = args.size
    volume = np.random.default_rng(0).integers(0, 256, (args.bscans, height, width), dtype=np.uint8)
    print(
        f"model: {weights or 'untrained paper config'}, {count_parameters(model) / 1e6:.2f} M parameters, "
        f"{gflops_per_bscan(model, height, width):.2f} GFLOP per {height}x{width} B-scan"
    )
    print(f"volume: {args.bscans} x {height} x {width} uint8 ({volume.nbytes / 2**20:.0f} MB)")
    for batch_size in (1, 4, 8):
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
