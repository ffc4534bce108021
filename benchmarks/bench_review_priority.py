"""Does the review queue send the user to the wrong masks first? Rank correlation (Spearman) per subject between
each B-scan's review priority and its real error against the expert: 1 - Dice, and error pixels.

    python benchmarks/bench_review_priority.py --recipe recipes/default_weights.toml --part validation [--shift NAME]
    python benchmarks/bench_review_priority.py --images A.tif B.tif --labels A_mask.tif B_mask.tif [--weights W]
    python benchmarks/bench_review_priority.py --recipe recipes/default_weights.toml --crossval RUNS/cv_stage2
        (each fold's model on the subjects it held out: ``octfluid crossval --out RUNS/cv_stage2``)
    python benchmarks/bench_review_priority.py --recipe recipes/default_weights.toml --part train \
        --temperatures 0.005 0.01 0.02 0.03 0.05 0.25 1     (how priority.RELIABILITY_TEMPERATURE was chosen)

Priorities compared: the mean entropy the queue used before (``priority.mean_entropy_bits``), the least reliable
masks (``priority.expected_dice_error``), the most pixels to fix (``priority.pixels_at_risk``), and the queue's
order now: the disagreement with a mirrored pass (``priority.mirrored_disagreement``: 1 - Dice and differing
pixels), and the two mirrored figures' ranks averaged (``mirrored, both ranks``: a B-scan high in either comes
early). The last row orders by the real 1 - Dice: its correlation with the error pixels shows how far one order
can rank both. Only annotated B-scans and pixels count. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from priority_candidates import RELIABILITY_TEMPERATURE, expected_dice_error, mean_entropy_bits, pixels_at_risk
from scipy.stats import rankdata, spearmanr

from napari_octfluid.cli._common import load_subjects
from napari_octfluid.inference import predict
from napari_octfluid.labels import FLUID, IGNORE
from napari_octfluid.model import load_model
from napari_octfluid.priority import mirrored_disagreement
from napari_octfluid.weights import default_weights_path


def drained(generator):
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def real_errors(expert: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per B-scan: 1 - Dice (0 when neither has fluid) and the count of wrong pixels, annotated pixels only."""
    dice_errors, wrong = [], []
    for truth, called in zip(expert, mask):
        annotated = truth != IGNORE
        truth, called = (truth == FLUID) & annotated, (called > 0) & annotated
        total = truth.sum() + called.sum()
        dice_errors.append(0.0 if total == 0 else 1.0 - 2.0 * (truth & called).sum() / total)
        wrong.append(float((truth ^ called).sum()))
    return np.asarray(dice_errors), np.asarray(wrong)


def mean_rank(*scores: np.ndarray) -> np.ndarray:
    """The average of each B-scan's rank (0 to 1) under each of ``scores``."""
    return np.mean([rankdata(score) / len(score) for score in scores], axis=0)


def models_and_subjects(args) -> list[tuple[str, object, list]]:
    """(label, model, subjects to rank) per model: each cross-validation fold's final model with the subjects it
    held out (``--crossval``), or one model with the recipe's part or the files given."""
    from napari_octfluid.training.recipe import recipe_subjects

    if args.crossval:
        everyone = {s.name: s for part in ("train", "validation") for s in recipe_subjects(args.recipe, part)}
        runs = []
        for path in sorted(Path(args.crossval).glob("fold_*/final.pt")):
            model, payload = load_model(path)
            runs.append((path.parent.name, model, [everyone[name] for name in payload["held_out"]]))
        return runs
    subjects = recipe_subjects(args.recipe, args.part) if args.recipe else load_subjects(args.images, args.labels)
    return [("model", load_model(args.weights or default_weights_path())[0], subjects)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", default=[])
    parser.add_argument("--labels", nargs="+", default=[])
    parser.add_argument("--recipe", help="use a recipe's subjects (with --part)")
    parser.add_argument("--part", default="validation", choices=["validation", "train"])
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--crossval", help="a crossval --out folder: each fold's model on its held-out subjects")
    parser.add_argument("--shift", help="apply this robustness shift (napari_octfluid.shifts) first")
    parser.add_argument("--temperatures", nargs="+", type=float, default=[RELIABILITY_TEMPERATURE])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.crossval and not args.recipe:
        parser.error("--crossval needs the --recipe whose subjects the folds were made of")
    names = [
        "entropy (before)",
        *(f"least reliable, T={t:g}" for t in args.temperatures),
        "pixels at risk",
        "mirrored 1-Dice (queue)",
        "mirrored differing px",
        "mirrored, both ranks",
        "oracle: real 1-Dice",
    ]
    against_dice: dict[str, list[float]] = {name: [] for name in names}
    against_pixels: dict[str, list[float]] = {name: [] for name in names}
    print(f"shift {args.shift or 'none'}; Spearman rho per subject")
    print(f"{'subject':<22}{'B-scans':>8}  " + "  ".join(f"{n:>26}" for n in names))
    runs = models_and_subjects(args)
    for label, model, subject, index in ((r[0], r[1], s, i) for r in runs for i, s in enumerate(r[2])):
        threshold = model.decision_threshold
        keep = subject.annotated_bscans()
        images, expert = subject.images[keep], subject.labels[keep]
        if args.shift:
            from napari_octfluid.shifts import apply_shift

            images, expert = apply_shift(args.shift, images, expert, seed=0, index=index)
        result = drained(predict(images, model, device="cpu"))
        annotated = expert != IGNORE
        scores = {"entropy (before)": mean_entropy_bits(np.where(annotated, result.fluid_probability, 0))}
        for t in args.temperatures:
            scores[f"least reliable, T={t:g}"] = expected_dice_error(
                result.labels, result.fluid_probability, threshold, t, annotated
            )
        scores["pixels at risk"] = pixels_at_risk(result.labels, result.fluid_probability, threshold, annotated)
        mirrored = drained(mirrored_disagreement(images, model, np.where(annotated, result.labels, 0), "cpu"))
        scores["mirrored 1-Dice (queue)"], scores["mirrored differing px"] = mirrored
        scores["mirrored, both ranks"] = mean_rank(*mirrored)
        dice_error, wrong = real_errors(expert, result.labels)
        # the ceiling: ordered by the real 1 - Dice, how well can any order rank the error pixels too?
        scores["oracle: real 1-Dice"] = dice_error
        cells = []
        for name in names:
            rho_dice = spearmanr(scores[name], dice_error).statistic
            rho_pixels = spearmanr(scores[name], wrong).statistic
            against_dice[name].append(rho_dice)
            against_pixels[name].append(rho_pixels)
            cells.append(f"{rho_dice:>+12.2f} / {rho_pixels:>+5.2f} px")
        name = subject.name if label == "model" else f"{label}:{subject.name}"
        print(f"{name:<22}{len(keep):>8}  " + "  ".join(f"{c:>26}" for c in cells), flush=True)
    print("mean over subjects, with 1 - Dice / with error pixels (min over subjects in brackets):")
    for name in names:
        d, p = np.asarray(against_dice[name]), np.asarray(against_pixels[name])
        print(f"  {name:<26} {np.nanmean(d):+.2f} ({np.nanmin(d):+.2f})  /  {np.nanmean(p):+.2f} ({np.nanmin(p):+.2f})")


if __name__ == "__main__":
    main()
