"""How much of the second training stage to keep, chosen by cross-validation by subject without training again.

Each fold of a second stage trained with the whole change kept (``octfluid crossval --recipe
recipes/robust_weights.toml --init-from CV1 --out CV2`` with ``change_kept = 1``) is blended with the same fold of
its first stage: first + kept * (second - first) (WiSE-FT, Wortsman et al. 2022, Eq. 1; ``training/blend.py``),
calibrated again on the fold's own training B-scans (threshold and minimum lesion size, as ``train_fold`` does), and
tested on the fold's held-out subjects by ``octfluid crossval --reuse``, clean and under ``--shift``. The weights are
exactly what the recipe's ``change_kept`` gives: the blend touches only the result, never the training path
(tests/training/test_crossval.py checks it).

    python benchmarks/bench_change_kept.py --recipe recipes/robust_weights.toml --first CV1 --second CV2 \
        --kept 0.25 0.5 0.75 --out /tmp/kept [--shift all] [--threads 1]

It prints ``octfluid crossval``'s tables for each share, then one summary row per share (pooled Dice of all
held-out B-scans, Duke inside the annotated band, UMN, and the false-alarm rate on fluid-free B-scans, clean).
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import torch

from napari_octfluid.cli import main as octfluid
from napari_octfluid.model import load_model, update_checkpoint
from napari_octfluid.training.blend import blend_weights, starting_state
from napari_octfluid.training.calibrate import calibrate_checkpoint
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.recipe import recipe_subjects


def training_pool(recipe: str) -> list:
    """Every subject the recipe's folds were made of (its train and validation parts, pooled as crossval pools them)."""
    return [s for part in ("train", "validation") for s in recipe_subjects(recipe, part)]


def calibrated_copy(source: Path, target: Path, subjects: list, weights=None) -> float:
    """``source`` (a fold's final.pt) copied to ``target``, with ``weights`` written in where given, calibrated
    again (threshold and minimum lesion size) on that fold's training B-scans; returns the threshold."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    if weights is not None:
        update_checkpoint(target, weights)
    held_out = load_model(target)[1]["held_out"]
    threshold, _ = calibrate_checkpoint(target, BscanSet.from_subjects([s for s in subjects if s.name not in held_out]))
    return threshold


def blend_folds(first: Path, second: Path, kept: float, out: Path, recipe: str, folds: list[str]) -> None:
    """Write ``out/fold_K/final.pt`` for each fold: the two stages blended, calibrated on the fold's training
    B-scans, with the second stage's other fields (held-out subjects, training time)."""
    subjects = training_pool(recipe)
    for fold in folds:
        start, _ = load_model(first / f"fold_{fold}" / "final.pt")
        trained, _ = load_model(second / f"fold_{fold}" / "final.pt")
        blended = blend_weights(starting_state(start), trained, kept)
        source, target = second / f"fold_{fold}" / "final.pt", out / f"fold_{fold}" / "final.pt"
        print(f"change kept {kept}, fold {fold}: threshold {calibrated_copy(source, target, subjects, blended)}")


def summary(table: Path) -> str:
    rows = {(r["group"], r["rater"], r["shift"]): r for r in csv.DictReader(table.open())}

    def dice(group):
        return float(rows[(group, "model", "clean")]["pooled_dice"])

    rate = float(rows[("all", "model", "clean")]["false_positive_rate"])
    return f"{dice('all'):.4f} | {dice('duke'):.4f} | {dice('umn'):.4f} | {rate:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="the second stage's recipe (its subjects are refolded)")
    parser.add_argument("--first", required=True, type=Path, help="the first stage's crossval --out")
    parser.add_argument("--second", required=True, type=Path, help="the second stage's crossval --out (all kept)")
    parser.add_argument("--kept", nargs="+", type=float, required=True, help="shares of the change to try")
    parser.add_argument("--out", required=True, type=Path, help="a folder for the blended folds and tables")
    parser.add_argument("--folds", type=int, default=5, help="the number of folds both stages were run with")
    parser.add_argument("--shift", nargs="*", default=[], help="also test under these shifts (or all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folds = sorted(p.name.removeprefix("fold_") for p in args.second.glob("fold_*") if (p / "final.pt").is_file())
    tables = {}
    for kept in args.kept:
        out = args.out / f"kept_{kept}"
        blend_folds(args.first, args.second, kept, out, args.recipe, folds)
        tables[kept] = args.out / f"kept_{kept}.csv"
        shifts = ["--shift", *args.shift] if args.shift else []
        command = ["crossval", "--recipe", args.recipe, "--folds", str(args.folds), "--threads", str(args.threads)]
        octfluid([*command, "--out", str(out), "--only-folds", *folds, "--reuse", *shifts, "--csv", str(tables[kept])])
    print("\n| change kept | pooled Dice | Duke | UMN | false alarms |\n|---|---|---|---|---|")
    for kept, table in tables.items():
        print(f"| {kept} | {summary(table)} |")


if __name__ == "__main__":
    main()
