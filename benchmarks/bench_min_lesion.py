"""The minimum lesion size on subjects the model never saw: each size of ``min_lesion.SIZES`` applied to the
held-out predictions of every cross-validation fold, and each fold's own calibrated size, with pooled Dice (all,
per dataset) and the false-alarm rate (fluid-free B-scans with any fluid), the figures of issue 18.

    python benchmarks/bench_min_lesion.py --recipe recipes/default_weights.toml --crossval /work/runs/cv_stage2 \
        [--shift vendor_unaveraged] [--peaks 0.998 0.999] [--folds 1 2 3]

``--peaks`` also tries a candidate that was measured and dropped (docs/min_lesion_calibration.md): a region is
kept only where its peak fluid probability reaches the level given (hysteresis thresholding), on top of the size.
Prediction runs once per subject with the size rule off; the sizes are then applied to the masks, as prediction
would (``min_lesion.remove_small_lesions``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_review_priority import drained, models_and_subjects
from scipy import ndimage

from napari_octfluid.evaluation import SHIFT_SEED, axial_spacing_for
from napari_octfluid.inference import predict
from napari_octfluid.labels import counts_against
from napari_octfluid.metrics import Agreement, Confusion, concatenated
from napari_octfluid.min_lesion import OFF, SIZES, remove_small_lesions

EIGHT_CONNECTED = np.ones((3, 3), bool)  # as remove_small_lesions counts regions


def confident_regions_only(labels: np.ndarray, fluid: np.ndarray, peak: float) -> np.ndarray:
    """``labels[Z, Y, X]`` with each B-scan's fluid regions whose highest probability is under ``peak`` removed."""
    kept = np.zeros_like(labels)
    for z, (mask, probability) in enumerate(zip(labels, fluid)):
        regions, count = ndimage.label(mask > 0, EIGHT_CONNECTED)
        if count:
            peaks = ndimage.maximum(probability, regions, np.arange(1, count + 1))
            kept[z] = np.where(np.isin(regions, np.flatnonzero(peaks >= peak) + 1), mask, 0)
    return kept


def agreement(counts: list[Confusion]) -> Agreement:
    return Agreement.from_confusion(concatenated(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="the recipe whose subjects the folds were made of")
    parser.add_argument("--crossval", required=True, help="a crossval --out folder (fold_K/final.pt)")
    parser.add_argument("--folds", nargs="+", help="only these folds (e.g. 4 5)")
    parser.add_argument("--shift", help="apply this robustness shift (napari_octfluid.shifts) first")
    parser.add_argument("--peaks", nargs="*", type=float, default=[], help="also try the peak-probability rule")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.part, args.images, args.labels, args.weights = "validation", [], [], None
    runs = [r for r in models_and_subjects(args) if not args.folds or r[0].removeprefix("fold_") in args.folds]
    rules = [("size", size, 0.0) for size in SIZES] + [("size+peak", 60, p) for p in args.peaks]
    counts: dict[tuple, dict[str, list[Confusion]]] = {rule: {} for rule in rules + [("calibrated", None, 0.0)]}
    for label, model, subjects in runs:
        print(f"{label}: held out {', '.join(s.name for s in subjects)}; calibrated size {model.min_lesion_pixels}")
        for index, subject in enumerate(subjects):
            keep = subject.annotated_bscans()
            images, expert = subject.images[keep], subject.labels[keep]
            if args.shift:
                from napari_octfluid.shifts import apply_shift

                images, expert = apply_shift(args.shift, images, expert, seed=SHIFT_SEED, index=index)
            spacing = axial_spacing_for(subject, images.shape, model)
            result = drained(predict(images, model, "cpu", None, OFF, spacing))
            for rule in counts:
                kind, size, peak = rule
                mask = (
                    result.labels
                    if peak == 0
                    else confident_regions_only(result.labels, result.fluid_probability, peak)
                )
                mask = remove_small_lesions(mask, (model.min_lesion_pixels or OFF) if kind == "calibrated" else size)
                for group in ("all", subject.dataset):
                    counts[rule].setdefault(group, []).append(counts_against(mask, expert))
    groups = sorted({g for per_group in counts.values() for g in per_group} - {"all"})
    print(f"shift {args.shift or 'none'}; folds {', '.join(r[0] for r in runs)}")
    print(f"| rule | pooled Dice | {' | '.join(groups)} | false alarms | fluid-free B-scans |")
    print("|---|---|" + "---|" * len(groups) + "---|---|")
    for (kind, size, peak), per_group in counts.items():
        name = {"size": f"size {size}", "calibrated": "each fold's calibrated size"}.get(
            kind, f"size 60, peak {peak:g}"
        )
        everything = agreement(per_group["all"])
        free = int(sum(((c.tp + c.fn) == 0).sum() for c in per_group["all"]))
        dice = " | ".join(f"{agreement(per_group[g]).pooled_dice:.3f}" for g in groups)
        print(f"| {name} | {everything.pooled_dice:.3f} | {dice} | {everything.false_positive_rate:.3f} | {free} |")


if __name__ == "__main__":
    main()
