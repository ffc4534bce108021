"""``octfluid calibrate``: choose a checkpoint's fluid threshold on a recipe's training data."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="choose a checkpoint's fluid threshold on a recipe's training data (octfluid train does this itself)",
    )
    parser.add_argument("--weights", required=True)
    parser.add_argument("--recipe", required=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..outputs import check_outputs
    from ..training.calibrate import calibrate_checkpoint
    from ..training.recipe import load_recipe
    from .train import print_calibration

    check_outputs({"--weights": args.weights}, overwrite=True)  # rewritten in place, after minutes of calibration
    print_calibration(args.weights, *calibrate_checkpoint(args.weights, load_recipe(args.recipe).train_data))
    return 0
