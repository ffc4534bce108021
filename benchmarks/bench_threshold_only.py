"""Adapting the threshold alone: how much would choosing the fluid threshold on a subject's corrected B-scans give?

    python benchmarks/bench_threshold_only.py --cv-dir runs/cv_full

For every subject a cross-validation fold held out: the fold model's probabilities, the threshold chosen on k
corrected B-scans (spread over those with fluid, as bench_finetune.py corrects them), and pooled Dice on the other
B-scans with the stored threshold, the chosen one and the best one for those B-scans themselves (an oracle: the most
any threshold could give). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from bench_finetune import fluid_bscans, shared_subjects, spread_corrections  # beside this script

from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.labels import counts_against
from napari_octfluid.model import load_model
from napari_octfluid.training.calibrate import THRESHOLDS  # the grid octfluid train calibrates on


def dice_at(probability: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(counts_against(probability > threshold, labels).pooled().dice)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv-dir", type=Path, required=True, help="octfluid crossval --out folder")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    every = shared_subjects()
    chosen_gain, best_gain = [], []
    for path in sorted(args.cv_dir.glob("fold_*/final.pt")):
        model, payload = load_model(path)
        for name in payload.get("held_out", []):
            subject = every[name]
            with_fluid = fluid_bscans(subject.labels)
            if len(with_fluid) <= args.k:
                continue
            corrected = spread_corrections(with_fluid, args.k)
            others = np.setdiff1d(np.arange(len(subject.labels)), corrected)
            _, result = run_to_end(predict(subject.images, model, "cpu"))
            probability = result.fluid_probability
            on_corrected = [dice_at(probability[corrected], subject.labels[corrected], t) for t in THRESHOLDS]
            chosen = THRESHOLDS[int(np.argmax(on_corrected))]
            before, after = (
                dice_at(probability[others], subject.labels[others], t) for t in (model.decision_threshold, chosen)
            )
            best = max(dice_at(probability[others], subject.labels[others], t) for t in THRESHOLDS)
            chosen_gain.append(after - before)
            best_gain.append(best - before)
            print(
                f"{name}: threshold {model.decision_threshold} -> {chosen}: Dice on the other B-scans {before:.4f} "
                f"-> {after:.4f} ({after - before:+.4f}); best threshold for them {best:.4f}",
                flush=True,
            )
    print(
        f"{len(chosen_gain)} subjects: chosen threshold {np.mean(chosen_gain):+.4f} (median "
        f"{np.median(chosen_gain):+.4f}, worst {np.min(chosen_gain):+.4f}); best possible {np.mean(best_gain):+.4f} "
        f"(median {np.median(best_gain):+.4f})"
    )


if __name__ == "__main__":
    main()
