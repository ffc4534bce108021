"""Prediction speed of this checkout against another version of octfluid, side by side in one run.

    python benchmarks/bench_versions.py --old /path/to/older/checkout [--bscans 49] [--threads 1] [--rounds 5]

Each round runs the same prediction (the shipped weights on a volume of the bundled sample's B-scans) once with each
version, in fresh processes, alternately, so that the machine's load falls on both alike; it prints B-scans per second
per round (of wall-clock time and of the process's CPU time), the median of each version and their ratio, and how
many mask pixels differ between the two versions.
Everything the versions do differently counts: model layout, normalisation, padding rule, thresholding. Make the old
checkout outside this one: `mkdir /tmp/octfluid-before && git archive <commit> | tar -x -C /tmp/octfluid-before`.
Prints figures; asserts nothing.
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
start, cpu = time.perf_counter(), time.process_time()
_, result = run_to_end(predict(volume, model, "cpu", {batch}))
print(len(volume) / (time.perf_counter() - start), len(volume) / (time.process_time() - cpu))
print(int(getattr(model, "min_lesion_pixels", None) or 0))  # the cleaning this version applies (0: none)
np.save({out!r}, result.labels)
"""


def run_version(root: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, int]:
    """B-scans per second of wall-clock time and per second of the process's CPU time (the steadier figure on a
    loaded machine: other processes stretch the first, not the second), and the minimum lesion size it applied."""
    program = PROGRAM.format(
        root=str(root), threads=args.threads, bscans=args.bscans, batch=args.batch_size, out=str(out)
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{root}: {done.stderr.strip().splitlines()[-1]}")
    rates, min_lesion = done.stdout.strip().splitlines()[-2:]
    wall, cpu = rates.split()
    return float(wall), float(cpu), int(min_lesion)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path, help="a checkout of the older version")
    parser.add_argument("--bscans", type=int, default=49)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rates: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in ("old", "new")}
    min_lesion: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        masks = {name: Path(folder) / f"{name}.npy" for name in rates}
        for round_ in range(1, args.rounds + 1):
            order = ("old", "new") if round_ % 2 else ("new", "old")  # neither always runs first
            for name in order:
                wall, cpu, min_lesion[name] = run_version(args.old if name == "old" else REPO, masks[name], args)
                rates[name]["wall"].append(wall)
                rates[name]["cpu"].append(cpu)
            print(
                f"round {round_}: old {rates['old']['wall'][-1]:.2f}, new {rates['new']['wall'][-1]:.2f} B-scans/s "
                f"(per CPU-second: old {rates['old']['cpu'][-1]:.2f}, new {rates['new']['cpu'][-1]:.2f})",
                flush=True,
            )
        import numpy as np

        old, new = np.load(masks["old"]), np.load(masks["new"])
    print(
        f"{args.bscans} B-scans of {old.shape[1]} x {old.shape[2]}, batch {args.batch_size}, {args.threads} thread(s)"
    )
    for clock, unit in (("wall", "B-scans/s"), ("cpu", "B-scans/CPU-s")):
        median = {name: statistics.median(values[clock]) for name, values in rates.items()}
        ratios = [n / o for n, o in zip(rates["new"][clock], rates["old"][clock])]
        print(
            f"median {unit}: old {median['old']:.2f}, new {median['new']:.2f}; ratio of medians "
            f"{median['new'] / median['old']:.3f}, median of per-round ratios {statistics.median(ratios):.3f}"
        )
    print(
        f"mask pixels that differ: {int((old != new).sum())} of {old.size} "
        f"(fluid pixels: old {int((old > 0).sum())}, new {int((new > 0).sum())})"
    )
    if min_lesion["new"] != min_lesion["old"]:
        # a cleaning rule one version has and the other lacks changes masks on purpose: the speed-ups must not, so
        # the masks are compared again with the new version's rule applied to the old one's too
        sys.path.insert(0, str(REPO))
        from napari_octfluid.min_lesion import remove_small_lesions

        cleaned = remove_small_lesions(old, min_lesion["new"])
        print(
            f"after the same minimum lesion size ({min_lesion['new']} pixels; the old version applied "
            f"{min_lesion['old'] or 'none'}): {int((cleaned != new).sum())} of {old.size} mask pixels differ"
        )


if __name__ == "__main__":
    main()
