"""Prediction speed of this checkout against another version of octfluid, side by side in one run.

    python benchmarks/bench_versions.py --old /path/to/older/checkout [--bscans 49] [--threads 1] [--rounds 5]

Each round runs the same prediction (the shipped weights on a volume of the bundled sample's B-scans) once with each
version, in fresh processes, alternately, so that the machine's load falls on both alike; it prints B-scans per second
per round, the median of each version and their ratio, and how many mask pixels differ between the two versions.
Everything the versions do differently counts: model layout, normalisation, padding rule, thresholding. Make the old
checkout with `git worktree add /tmp/octfluid-before <commit>`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# run inside each version's own import path: read the sample, build the volume, predict once to warm up, then time
PROGRAM = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
torch.set_num_threads({threads})
from napari_octfluid.events import run_to_end
from napari_octfluid.inference import predict
from napari_octfluid.io import read_volume
from napari_octfluid.model import load_model
from napari_octfluid.weights import default_weights_path
from napari_octfluid._sample_data import SAMPLE_SCAN
scan = read_volume(SAMPLE_SCAN).data
volume = np.concatenate([scan] * (-(-{bscans} // len(scan))))[:{bscans}]
model, _ = load_model(default_weights_path())
run_to_end(predict(volume[:{batch}], model, "cpu", {batch}))
start = time.perf_counter()
_, result = run_to_end(predict(volume, model, "cpu", {batch}))
print(len(volume) / (time.perf_counter() - start))
np.save({out!r}, result.labels)
"""


def run_version(root: Path, out: Path, args: argparse.Namespace) -> float:
    program = PROGRAM.format(
        root=str(root), threads=args.threads, bscans=args.bscans, batch=args.batch_size, out=str(out)
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{root}: {done.stderr.strip().splitlines()[-1]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path, help="a checkout of the older version")
    parser.add_argument("--bscans", type=int, default=49)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as folder:
        masks = {name: Path(folder) / f"{name}.npy" for name in rates}
        for round_ in range(1, args.rounds + 1):
            order = ("old", "new") if round_ % 2 else ("new", "old")  # neither always runs first
            for name in order:
                rates[name].append(run_version(args.old if name == "old" else REPO, masks[name], args))
            print(f"round {round_}: old {rates['old'][-1]:.2f}, new {rates['new'][-1]:.2f} B-scans/s", flush=True)
        import numpy as np

        old, new = np.load(masks["old"]), np.load(masks["new"])
    median = {name: statistics.median(values) for name, values in rates.items()}
    ratios = [n / o for n, o in zip(rates["new"], rates["old"])]
    print(
        f"{args.bscans} B-scans of {old.shape[1]} x {old.shape[2]}, batch {args.batch_size}, {args.threads} thread(s)"
    )
    print(
        f"median B-scans/s: old {median['old']:.2f}, new {median['new']:.2f}; ratio of medians "
        f"{median['new'] / median['old']:.3f}, median of per-round ratios {statistics.median(ratios):.3f}"
    )
    print(
        f"mask pixels that differ: {int((old != new).sum())} of {old.size} "
        f"(fluid pixels: old {int((old > 0).sum())}, new {int((new > 0).sum())})"
    )


if __name__ == "__main__":
    main()
