"""``octfluid crossval``: k-fold cross-validation by subject of a recipe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import (
    DEVICES,
    CommandError,
    add_shift_option,
    add_threads_option,
    apply_threads,
    int_at_least,
    non_negative_float,
    override,
    positive_float,
    positive_int,
    report_training,
    shift_names,
)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "crossval",
        help="k-fold cross-validation by subject of a recipe (pooled held-out "
        "Dice and Jaccard, with noise, and grader 2)",
    )
    parser.add_argument("--recipe", required=True, help="its train and validation subjects are pooled and refolded")
    parser.add_argument("--folds", type=int_at_least(2), default=5, help="number of folds, at least 2 (default 5)")
    for name, kind in (
        ("--loss", str),
        ("--epochs", positive_int),
        ("--steps-per-epoch", positive_int),
        ("--batch-size", positive_int),
        ("--lr", positive_float),
        ("--seed", int),
    ):
        parser.add_argument(name, type=kind)
    add_threads_option(parser)
    parser.add_argument("--device", choices=DEVICES)
    parser.add_argument("--noise-sigma", nargs="+", type=non_negative_float, default=[0.0])
    add_shift_option(parser)
    parser.add_argument(
        "--init-from",
        metavar="DIR",
        help="a second training stage: start each fold from DIR/fold_K/final.pt, the --out of the first stage's "
        "crossval over the same subjects and --folds (e.g. recipes/robust_weights.toml after "
        "recipes/default_weights.toml)",
    )
    parser.add_argument(
        "--no-noise-augmentation",
        action="store_true",
        help="train without Gaussian noise augmentation (the noise-robustness ablation)",
    )
    parser.add_argument("--out", default="octfluid-crossval", help="folder for each fold's checkpoints")
    parser.add_argument("--csv", help="also write the table (pooled and per fold) to this CSV file")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown (for a model card)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="test folds already trained in --out again instead of training them (resume, re-evaluate)",
    )
    parser.add_argument(
        "--only-folds",
        nargs="+",
        type=positive_int,
        metavar="FOLD",
        help="train and test only these folds (from 1), e.g. to run folds in parallel processes; "
        "then --reuse pools them all",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="train again the folds already finished in --out, replacing them"
    )
    parser.set_defaults(run=run)


def check_fold_folders(args: argparse.Namespace) -> None:
    """Refuse, before any work, folds that do not exist, and training again over folds already finished in --out
    (their final.pt) unless --reuse (test them again) or --overwrite (replace them) says what to do with them."""
    from ..outputs import OutputError

    if args.only_folds and not set(args.only_folds) <= set(range(1, args.folds + 1)):
        raise CommandError(f"--only-folds: the folds are numbered 1 to {args.folds}, not {sorted(args.only_folds)}.")
    folds = args.only_folds or range(1, args.folds + 1)
    finished = [index for index in folds if (Path(args.out) / f"fold_{index}" / "final.pt").exists()]
    if finished and not (args.reuse or args.overwrite):
        raise OutputError(
            f"--out {args.out} already holds finished folds ({', '.join(map(str, finished))}): pass "
            "--reuse to test them again, --overwrite to train them again, or choose another folder."
        )


def run(args: argparse.Namespace) -> int:
    from ..evaluation import format_table, markdown_table, robustness_table, write_csv
    from ..events import drive
    from ..outputs import check_outputs
    from ..training.crossval import FirstStageError, FoldEnd, FoldStarted, cross_validate
    from ..training.recipe import load_recipe, recipe_subjects

    # the table is rewritten as folds finish (--reuse pools them again); its --overwrite retrains folds
    check_outputs({"--csv": args.csv}, inputs=[args.recipe], folders={"--out": args.out}, overwrite=True)
    check_fold_folders(args)
    shifts = shift_names(args.shift)
    apply_threads(args.threads)
    recipe = load_recipe(args.recipe)
    config = override(recipe.train_config, args)
    subjects = recipe_subjects(args.recipe, "train") + recipe_subjects(args.recipe, "validation")

    def report(event) -> None:
        if isinstance(event, FoldStarted):
            print(f"fold {event.fold}/{event.folds}: holding out {', '.join(event.held_out)}", file=sys.stderr)
        elif isinstance(event, FoldEnd):
            print(
                f"fold {event.fold}/{event.folds}: {event.train_minutes:.1f} min, threshold {event.threshold:.2f}\n"
                f"{format_table(event.rows)}",
                file=sys.stderr,
                flush=True,
            )
        else:
            report_training(event)

    print(
        f"octfluid crossval: {len(subjects)} subjects, {args.folds} folds, loss {config.loss}, "
        f"{config.epochs} x {config.steps_per_epoch} steps of {config.batch_size} per fold",
        file=sys.stderr,
    )
    try:  # a second stage's first-stage folds are all checked before any training
        result = drive(
            cross_validate(
                subjects,
                args.folds,
                recipe.model_config,
                config,
                tuple(args.noise_sigma),
                args.out,
                reuse=args.reuse,
                only=args.only_folds,
                shifts=tuple(shifts),
                init_from=args.init_from,
            ),
            report,
        )
    except FirstStageError as error:
        raise CommandError(f"--init-from: {error}") from error
    every_row = result.rows + [row for fold in result.folds for row in fold.rows]
    print(markdown_table(every_row) if args.markdown else format_table(result.rows))
    if shifts:
        print()
        print(robustness_table(result.rows, markdown=args.markdown))
    print(f"training time per fold: {', '.join(f'{f.train_minutes:.1f}' for f in result.folds)} min")
    if args.csv:
        print(f"wrote {write_csv(args.csv, every_row)}")
    return 0
