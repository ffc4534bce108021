"""Peak memory of a prediction on a large volume, beyond the volume itself (issue: stay under 2 GB).

    python benchmarks/bench_memory.py [--shape 128 1024 512] [--batch-size N] [--threads 2]

Builds a uint8 volume of the given shape, loads the shipped weights, then predicts on the CPU while a thread
samples the process's resident memory every 20 ms. Reports the peak above the baseline taken after the volume and
the model are in memory, and splits it into what the result holds (labels uint8 + fluid probability float32,
which the caller keeps) and the working memory of the prediction. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import psutil
import torch

from napari_octfluid.inference import PredictStarted, predict, run_to_end
from napari_octfluid.model import load_model
from napari_octfluid.weights import default_weights_path

MB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", nargs=3, type=int, default=[128, 1024, 512], metavar=("Z", "Y", "X"))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    process = psutil.Process()
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, size=tuple(args.shape), dtype=np.uint8)  # touched: resident
    model, _ = load_model(default_weights_path())
    run_to_end(predict(volume[:1], model, "cpu", 1))  # warm-up: allocator pools and kernels exist before we measure
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    events, result = run_to_end(predict(volume, model, "cpu", args.batch_size))
    batch = next(e.batch_size for e in events if isinstance(e, PredictStarted))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    kept = result.labels.nbytes + result.fluid_probability.nbytes
    above = peak[0] - baseline
    print(f"volume {tuple(args.shape)} uint8 = {volume.nbytes / MB:.0f} MB; batch {batch}; "
          f"{args.threads} CPU threads; {seconds:.0f} s ({len(volume) / seconds:.1f} B-scans/s)")
    print(f"peak resident memory above the volume and the model: {above / MB:.0f} MB "
          f"(the result the caller keeps: {kept / MB:.0f} MB; working memory: {(above - kept) / MB:.0f} MB)")


if __name__ == "__main__":
    main()
