"""``octfluid evaluate``: Dice and Jaccard of a model against expert labels, clean, with noise, and under named
appearance shifts (``--shift``, :mod:`napari_octfluid.shifts`): then a table of pooled Dice, its change from clean
and the false-alarm rate on fluid-free B-scans per shift, with Dice per subject beside them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (
    DEVICES,
    CommandError,
    add_overwrite_option,
    add_shift_option,
    add_threads_option,
    apply_threads,
    load_subjects,
    non_negative_float,
    positive_int,
    report_unfinished_run,
    shift_names,
)
from .predict import add_min_lesion_option


def add_parser(sub) -> None:
    parser = sub.add_parser("evaluate", help="Dice and Jaccard of the model against expert labels, with noise")
    parser.add_argument("--images", nargs="+", default=[])
    parser.add_argument("--labels", nargs="+", default=[])
    parser.add_argument("--recipe", help="evaluate on a recipe's validation subjects (with grader 2 where known)")
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument(
        "--noise-sigma",
        nargs="+",
        type=non_negative_float,
        default=[0.0],
        help="Gaussian noise added to the images, in grey levels (Darooei et al. 2023, Table 4)",
    )
    add_shift_option(parser)
    add_min_lesion_option(parser)
    parser.add_argument(
        "--no-axial-resampling",
        dest="axial_resampling",
        action="store_false",
        help="predict every scan at its own rows, even where a shift (or its file) gives it another axial pixel size "
        "than the model's: the figures before axial resampling, for comparison",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--batch-size", type=positive_int)
    add_threads_option(parser)
    parser.add_argument("--csv", help="also write the table to this CSV file")
    add_overwrite_option(parser, "the --csv file")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown (for a model card)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, format_table, grader_rows, markdown_table, robustness_table, write_csv
    from ..model import load_model
    from ..outputs import check_outputs
    from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path

    shifts = shift_names(args.shift)
    weights = args.weights or default_weights_path()
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    check_outputs(
        {"--csv": args.csv}, inputs=[*args.images, *args.labels, args.recipe, weights], overwrite=args.overwrite
    )
    if args.recipe:
        from ..training.recipe import recipe_subjects

        subjects = recipe_subjects(args.recipe, "validation")
        sources = [subject.name for subject in subjects]
    elif args.images:
        subjects = load_subjects(args.images, args.labels)
        sources = list(args.labels)
    else:
        raise CommandError("give --images and --labels, or --recipe FILE.")
    for subject, source in zip(subjects, sources):
        if not subject.annotated_bscans():
            # no pixel to count: scoring nothing against nothing would print a perfect Dice of 1.0
            raise CommandError(
                f"{Path(source).name}: no annotated pixels (every pixel is 255, not annotated): "
                "there is nothing to evaluate against."
            )
    model, payload = load_model(weights)
    report_unfinished_run("evaluate", weights, payload)
    apply_threads(args.threads)
    rows = evaluate(
        model,
        subjects,
        args.noise_sigma,
        args.device,
        args.batch_size,
        shifts=shifts,
        per_subject=bool(shifts),
        min_lesion_pixels=args.min_lesion_pixels,
        axial_resampling=args.axial_resampling,
    )
    rows += grader_rows(subjects)
    print(f"weights: {weights}")
    print(markdown_table(rows) if args.markdown else format_table(rows))
    if shifts:
        print()
        print(robustness_table(rows, markdown=args.markdown))
    if args.csv:
        print(f"wrote {write_csv(args.csv, rows)}")
    return 0
