"""``octfluid predict SCAN -o MASK``: segment fluid with the shipped weights or a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import DEVICES, CommandError, end_progress_line, positive_int, progress_line, report_unfinished_run

TIFF_SUFFIXES = (".tif", ".tiff")


def add_parser(sub) -> None:
    parser = sub.add_parser("predict", help="segment fluid in a scan into a uint8 TIFF mask")
    parser.add_argument("input")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--weights")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--probabilities")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..events import Notice, drive
    from ..inference import PredictProgress, PredictStarted, predict
    from ..io import read_volume, write_tiff
    from ..model import load_model
    from ..outputs import check_outputs
    from ..preprocess import BscanError
    from ..quantify import fluid_pixels_per_bscan
    from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path

    weights = args.weights or default_weights_path()
    outputs = {"-o": args.output, "--probabilities": args.probabilities}
    # before the minutes of prediction: a mask that cannot be written, or that would replace an input
    check_outputs(outputs, inputs=[args.input, weights])
    for option, path in outputs.items():
        if path and Path(path).suffix.lower() not in TIFF_SUFFIXES:  # a TIFF under another name cannot be read back
            raise CommandError(f"{option} {path}: octfluid writes TIFF files; give a name ending in .tif.")
    volume = read_volume(args.input)  # a bad input is reported before anything else
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    model, payload = load_model(weights)
    report_unfinished_run("predict", weights, payload)

    def report(event) -> None:
        if isinstance(event, PredictStarted):
            print(
                f"octfluid predict: {event.n_bscans} B-scans on {event.device}, batch {event.batch_size}",
                file=sys.stderr,
            )
        elif isinstance(event, PredictProgress):
            progress_line(event.done, event.total, event.elapsed_s)
        elif isinstance(event, Notice):
            end_progress_line()
            print(f"octfluid predict: {event.message}", file=sys.stderr)

    try:  # predict() checks the B-scans before any work; the message gains the file's name
        result = drive(predict(volume.data, model, device=args.device, batch_size=args.batch_size), report)
    except BscanError as error:
        raise BscanError(f"{Path(args.input).name}: {error}") from None
    meta = {**volume.meta, "model": str(weights)}
    write_tiff(args.output, volume.as_source_shape(result.labels), volume.spacing_mm, meta, kind="labels")
    if args.probabilities:
        write_tiff(
            args.probabilities, volume.as_source_shape(result.fluid_probability), volume.spacing_mm, meta, kind="image"
        )
    per_bscan = fluid_pixels_per_bscan(result.labels)
    print(
        f"wrote {args.output}: fluid in {int((per_bscan > 0).sum())} of {volume.n_bscans} B-scans, "
        f"{int(per_bscan.sum())} pixels ({result.seconds:.1f} s on {result.device})"
    )
    return 0
