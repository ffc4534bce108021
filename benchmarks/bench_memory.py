"""Peak memory of octfluid on hostile files (issue 21), and of a prediction on a large volume.

    python benchmarks/bench_memory.py [--limit 512MiB]
    python benchmarks/bench_memory.py --prediction [--shape 128 1024 512] [--batch-size N] [--threads 2]

Hostile files (the default): the worst cases of issue 21, each a few hundred kilobytes on disk, are made in a
temporary folder (never holding what they declare) and opened, each in a fresh Python, with the memory budget
``--limit`` in force (``OCTFLUID_MEMORY_LIMIT``): a 140 KB compressed TIFF that decodes to 2.7 GB, a TIFF
declaring 20.6 GiB, a 2 MB folder of PNGs that decodes to 2 GiB, checkpoints that inflate to 3.5 GB (beyond any
model file) and to 1.5 GB (beyond the budget), and a checkpoint whose config describes a 174 GB model. Prints,
for each, what happened and the peak resident memory (ru_maxrss) above the process's baseline after its imports.

Prediction (``--prediction``): builds a uint8 volume of the given shape, loads the shipped weights, then predicts
on the CPU while a thread samples the process's resident memory every 20 ms. Reports the peak above the baseline
taken after the volume and the model are in memory, and splits it into what the result holds (labels uint8 +
fluid probability float32, which the caller keeps) and the working memory of the prediction.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the hostile-file builders are the tests' corpus, shared, not copied

MB = 2**20

# Run in a fresh interpreter per case, so each peak is that case's alone (ru_maxrss never goes down).
CHILD = """
import json, resource, sys
import napari_octfluid.io, napari_octfluid.model
from napari_octfluid.io import read_volume
from napari_octfluid.model import load_model
kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
baseline = kb()
try:
    (load_model if sys.argv[1].endswith(".pt") else read_volume)(sys.argv[1])
    outcome = "read"
except Exception as error:  # reported, not raised: the figure is the point
    outcome = f"{type(error).__name__}: {str(error)[:110]}"
print(json.dumps({"outcome": outcome, "baseline_kb": baseline, "peak_kb": kb()}))
"""


def hostile_files(folder: Path) -> list[tuple[str, Path, str]]:
    """(case, path, what it declares) for the worst cases of issue 21."""
    from bad_files import GIGANTIC_CONFIG, checkpoint_with, declared_png, declared_tiff, inflating_checkpoint

    pngs = folder / "pngs"
    pngs.mkdir()
    for index in range(8):
        declared_png(pngs / f"b{index}.png", 16384, 16384, inflating=True)
    return [
        ("compressed TIFF bomb", declared_tiff(folder / "bomb.tif", (1000, 1500, 1800)), "2.7 GB of pixels"),
        (
            "TIFF declaring 20.6 GiB",
            declared_tiff(folder / "huge.tif", (120000, 92160), np.uint16, strip=b"x\x9c\x03\x00"),
            "20.6 GiB of pixels",
        ),
        ("folder of PNGs", pngs, "8 x 256 MiB of pixels"),
        ("inflating checkpoint", inflating_checkpoint(folder / "bomb.pt", 3_500_000_000), "3.5 GB of tensors"),
        ("inflating checkpoint, < cap", inflating_checkpoint(folder / "bomb2.pt", 1_500_000_000), "1.5 GB of tensors"),
        (
            "checkpoint of a huge model",
            checkpoint_with(folder / "giant.pt", GIGANTIC_CONFIG),
            "43.6 billion parameters",
        ),
    ]


def _on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def bench_hostile(limit: str) -> None:
    from napari_octfluid.memory import format_bytes

    env = {**os.environ, "OCTFLUID_MEMORY_LIMIT": limit}
    print(f"memory budget in force: OCTFLUID_MEMORY_LIMIT={limit}")
    print(f"{'case':28} {'on disk':>10}  {'declares':24} {'peak above baseline':>20}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for case, path, declares in hostile_files(Path(folder)):
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env, cwd=REPO
            )
            if run.returncode:
                print(f"{case:28} failed: {run.stderr.strip().splitlines()[-1:]}")
                continue
            report = json.loads(run.stdout.strip().splitlines()[-1])
            above = (report["peak_kb"] - report["baseline_kb"]) / 1024
            print(
                f"{case:28} {format_bytes(_on_disk(path)):>10}  {declares:24} {above:>10.1f} MB "
                f"(total {report['peak_kb'] / 1024:.0f} MB)  {report['outcome']}"
            )


def bench_prediction(shape: tuple[int, int, int], batch_size: int | None, threads: int) -> None:
    import psutil
    import torch

    from napari_octfluid.inference import PredictStarted, predict, run_to_end
    from napari_octfluid.model import load_model
    from napari_octfluid.weights import default_weights_path

    torch.set_num_threads(threads)
    process = psutil.Process()
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, size=shape, dtype=np.uint8)  # touched: resident
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
    events, result = run_to_end(predict(volume, model, "cpu", batch_size))
    batch = next(e.batch_size for e in events if isinstance(e, PredictStarted))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    kept = result.labels.nbytes + result.fluid_probability.nbytes
    above = peak[0] - baseline
    print(
        f"volume {shape} uint8 = {volume.nbytes / MB:.0f} MB; batch {batch}; "
        f"{threads} CPU threads; {seconds:.0f} s ({len(volume) / seconds:.1f} B-scans/s)"
    )
    print(
        f"peak resident memory above the volume and the model: {above / MB:.0f} MB "
        f"(the result the caller keeps: {kept / MB:.0f} MB; working memory: {(above - kept) / MB:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", default="512MiB", help="the memory budget for the hostile files")
    parser.add_argument("--prediction", action="store_true", help="measure a prediction instead")
    parser.add_argument("--shape", nargs=3, type=int, default=[128, 1024, 512], metavar=("Z", "Y", "X"))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.prediction:
        bench_prediction(tuple(args.shape), args.batch_size, args.threads)
    else:
        bench_hostile(args.limit)


if __name__ == "__main__":
    main()
