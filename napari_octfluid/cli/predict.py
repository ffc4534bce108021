"""``octfluid predict``: segment fluid with the shipped weights or a checkpoint.

``predict SCAN -o MASK.tif`` writes one scan's mask. ``predict SCAN... -o DIR/`` (or ``--out-dir DIR``) writes a
mask per scan into DIR with a summary table, and resumes where a run stopped (:mod:`napari_octfluid.batch`); under
``torchrun`` the scans are shared out over the processes (:mod:`napari_octfluid.distributed`).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

from ._common import (
    DEVICES,
    CommandError,
    add_spacing_option,
    add_threads_option,
    apply_threads,
    end_progress_line,
    int_at_least,
    positive_int,
    progress_line,
    report_unfinished_run,
    spacing_given_over_file,
    status_line,
)

TIFF_SUFFIXES = (".tif", ".tiff")
# The processes of a sharded batch wait for one another only at the end, to gather the summary: one may finish
# hours before the slowest (its scans failed fast, or were done before), far beyond torch's 30 minutes.
GATHER_TIMEOUT = timedelta(days=7)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "predict",
        help="segment fluid in scans into uint8 TIFF masks",
        description="Segment fluid in one scan (-o MASK.tif) or many (-o DIR/): a mask per scan named after it, "
        "finished masks skipped when the command is run again, and a summary CSV.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="scan files, folders of B-scans, glob patterns ('scans/**/*.vol', quoted), or .txt/.csv lists of paths",
    )
    parser.add_argument("-o", "--output", help="the mask of one scan (MASK.tif), or a folder for a batch (DIR/)")
    parser.add_argument("--out-dir", help="a folder for a batch: one mask per scan, <scan>_fluid.tif")
    parser.add_argument("--summary", help="the batch's summary CSV (default: octfluid_summary.csv in the folder)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace -o MASK.tif and --probabilities if they exist; in a batch, make again the masks that other "
        "weights, or an older version of the scan, made",
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="a checkpoint file (default: the shipped weights)")
    weights.add_argument(
        "--model", metavar="NAME", help="a fine-tuned model kept by name (octfluid train --init --name, or Keep)"
    )
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--batch-size", type=positive_int)
    add_threads_option(parser)
    parser.add_argument("--probabilities", help="one scan only: also write the fluid probability (P.tif)")
    add_spacing_option(
        parser,
        "; one scan only. The depth spacing sets the size the model sees cysts at: give it where the file records "
        "none (a TIFF from another device), and the mask keeps it for quantify",
    )
    add_min_lesion_option(parser)
    parser.set_defaults(run=run)


def chosen_weights(args: argparse.Namespace) -> Path | str | None:
    """The checkpoint ``--weights`` names, or the file of the model ``--model`` names (refused in one line, with
    the names there are, when no model of that name is kept); None for the default."""
    if not getattr(args, "model", None):
        if args.weights and Path(args.weights).is_dir():  # else refused later as "inside the input folder"
            raise CommandError(f"--weights {args.weights} is a folder: give the checkpoint file in it (.pt).")
        return args.weights
    from ..model_library import ModelNameError, kept_models, library_folder, model_path

    try:
        path = model_path(args.model)
    except ModelNameError as error:
        raise CommandError(f"--model: {error}") from None
    if not path.is_file():
        names = ", ".join(repr(model.name) for model in kept_models()) or "none yet"
        raise CommandError(f"--model: no model named {args.model!r} in {library_folder()} (kept: {names}).")
    return path


def add_min_lesion_option(parser: argparse.ArgumentParser) -> None:
    """``--min-lesion-pixels``, for predict and evaluate alike."""
    parser.add_argument(
        "--min-lesion-pixels",
        type=int_at_least(0),
        metavar="N",
        help="remove predicted fluid regions under N pixels in a B-scan (default: the size calibrated with the "
        "weights, off for weights without one; 0: off)",
    )


def batch_folder(args: argparse.Namespace) -> Path | None:
    """The output folder of a batch, or None for one scan into one mask (``-o MASK.tif``, as before batches)."""
    from ..batch import is_list_file, is_pattern

    if args.out_dir and args.output:
        raise CommandError("give -o or --out-dir, not both.")
    if args.out_dir:
        return Path(args.out_dir)
    several = len(args.inputs) > 1 or is_list_file(args.inputs[0]) or is_pattern(args.inputs[0])
    if args.output is None:
        raise CommandError(
            "give an output folder for the masks: -o DIR/ or --out-dir DIR."
            if several
            else "give -o MASK.tif for the scan's mask, or -o DIR/ for a folder of masks."
        )
    if args.output.endswith(("/", os.sep)):
        return Path(args.output)
    if not several and Path(args.output).is_dir():  # not taken for a batch: -o names the mask of one scan
        raise CommandError(
            f"-o {args.output} is a folder: give the name of the mask to write, or -o {args.output.rstrip(os.sep)}/ "
            "for a folder of masks named after the scans."
        )
    if several:
        if Path(args.output).suffix.lower() in TIFF_SUFFIXES:
            raise CommandError(
                f"-o {args.output} names one file, but several scans are given: name a folder (-o DIR/ or "
                "--out-dir DIR) for a mask per scan."
            )
        return Path(args.output)
    return None


# what a namespace built by hand (``octfluid demo`` calls run() with one scan's settings) may leave out
DEFAULTS = {
    "out_dir": None,
    "summary": None,
    "overwrite": False,
    "threads": None,
    "probabilities": None,
    "spacing": None,
    "min_lesion_pixels": None,
}


def run(args: argparse.Namespace) -> int:
    args = argparse.Namespace(**{**DEFAULTS, **vars(args)})
    if getattr(args, "inputs", None) is None:
        args.inputs = [args.input]
    folder = batch_folder(args)
    if folder is not None:
        return run_batch(args, folder)
    from ..distributed import DistributedContext

    if DistributedContext.from_environment().is_distributed:
        raise CommandError("under torchrun, predict shares a batch of scans out: give an output folder (-o DIR/).")
    return run_one(args)


def run_one(args: argparse.Namespace) -> int:
    from ..axial import model_axial_spacing
    from ..events import Notice, drive
    from ..inference import PredictProgress, PredictStarted, predict
    from ..io import read_volume, write_tiff
    from ..model import load_model
    from ..outputs import check_outputs
    from ..preprocess import BscanError, check_not_blank
    from ..quantify import fluid_pixels_per_bscan
    from ..spacing import ENTERED_BY_USER, SPACING_SOURCE_KEY
    from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path

    [scan] = args.inputs
    weights = chosen_weights(args) or default_weights_path()
    outputs = {"-o": args.output, "--probabilities": args.probabilities}
    # before the minutes of prediction: a mask that cannot be written, or that would replace an input
    check_outputs(outputs, inputs=[scan, weights], overwrite=args.overwrite)
    for option, path in outputs.items():
        if path and Path(path).suffix.lower() not in TIFF_SUFFIXES:  # a TIFF under another name cannot be read back
            raise CommandError(f"{option} {path}: octfluid writes TIFF files; give a name ending in .tif.")
    volume = read_volume(scan).require_scan()  # a bad input is reported before anything else
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    spacing, meta = volume.spacing_mm, {**volume.meta, "model": str(weights)}
    if args.spacing:  # checked by add_spacing_option
        spacing = spacing_given_over_file("predict", args.spacing, volume, Path(scan).name)
        meta[SPACING_SOURCE_KEY] = ENTERED_BY_USER
    model, payload = load_model(weights)
    report_unfinished_run("predict", weights, payload)
    threads = apply_threads(args.threads)

    def report(event) -> None:
        if isinstance(event, PredictStarted):
            if spacing[1] is None:  # said once the scan passed its checks: a refused one gets its error alone
                print(
                    f"octfluid predict: notice: {Path(scan).name} records no depth spacing: it is segmented at its "
                    f"own rows, right for the device the model learnt ({model_axial_spacing(model) * 1000:.3g} um a "
                    "row) and wrong for one that samples depth finer or coarser. Give it with --spacing Z Y X "
                    "(micrometres) if you know it.",
                    file=sys.stderr,
                )
            print(
                f"octfluid predict: {event.n_bscans} B-scans on {event.device}, batch {event.batch_size}"
                + (f", {plural(threads, 'thread')}" if event.device == "cpu" else ""),
                file=sys.stderr,
            )
        elif isinstance(event, PredictProgress):
            progress_line(event.done, event.total, event.elapsed_s)
        elif isinstance(event, Notice):
            end_progress_line()
            print(f"octfluid predict: {event.message}", file=sys.stderr)

    try:  # predict() checks the B-scans before any work; the message gains the file's name
        check_not_blank(volume.data)
        result = drive(
            # the file's axial pixel size, where it gives one: resampled to the model's when it differs
            predict(volume.data, model, args.device, args.batch_size, args.min_lesion_pixels, spacing[1]),
            report,
        )
    except BscanError as error:
        raise BscanError(f"{Path(scan).name}: {error}") from None
    write_tiff(args.output, volume.as_source_shape(result.labels), spacing, meta, kind="labels")
    if args.probabilities:
        write_tiff(args.probabilities, volume.as_source_shape(result.fluid_probability), spacing, meta, kind="image")
    per_bscan = fluid_pixels_per_bscan(result.labels)
    print(
        f"wrote {args.output}: fluid in {int((per_bscan > 0).sum())} of {volume.n_bscans} B-scans, "
        f"{int(per_bscan.sum())} pixels ({result.seconds:.1f} s on {result.device})"
    )
    return 0


def run_batch(args: argparse.Namespace, folder: Path) -> int:
    from ..batch import (
        FAILED,
        SKIPPED,
        SUMMARY_NAME,
        ModelIdentity,
        check_output_folder,
        collect_sources,
        earlier_rows,
        is_list_file,
        is_summary,
        plan_batch,
        predict_batch,
        write_summary,
    )
    from ..distributed import DistributedContext
    from ..events import drive
    from ..model import load_model
    from ..outputs import check_outputs
    from ..weights import NO_WEIGHTS_MESSAGE, default_weights_path

    if args.probabilities:
        raise CommandError(
            "--probabilities names one scan's file: predict that scan alone (-o MASK.tif --probabilities P.tif)."
        )
    if args.spacing:
        raise CommandError("--spacing is one scan's: predict that scan alone (-o MASK.tif --spacing Z Y X).")
    context = DistributedContext.from_environment()
    weights = chosen_weights(args) or default_weights_path()
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    sources, notices = collect_sources(args.inputs)
    option = "--out-dir" if args.out_dir else "-o"
    summary = Path(args.summary) if args.summary else folder / SUMMARY_NAME
    # before any work: masks and the summary where they can be written, and never over or among the scans; the
    # default summary of a folder still to be made can be neither
    check_outputs(
        {"--summary": summary if args.summary or folder.is_dir() else None},
        inputs=[*(source.path for source in sources), *filter(is_list_file, args.inputs), weights],
        folders={option: folder},
        overwrite=args.overwrite or is_summary(summary),  # a batch's own summary is rewritten on every run
    )
    check_output_folder(folder, sources)
    device = context.device(args.device)
    threads = apply_threads(args.threads)
    identity = ModelIdentity.of(weights)

    def plan():  # once, on one view of the folder, before any process writes into it
        planned = plan_batch(sources, folder, identity, overwrite=args.overwrite)
        folder.mkdir(parents=True, exist_ok=True)
        return planned

    speaker = f"octfluid predict ({context.describe()})" if context.is_distributed else "octfluid predict"
    with context.process_group(device, timeout=GATHER_TIMEOUT):
        planned = context.run_on_main(plan)
        model, payload = load_model(weights)
        if context.is_main:
            for notice in notices:
                print(f"octfluid predict: notice: {notice}", file=sys.stderr)
            report_unfinished_run("predict", weights, payload)
        mine = context.shard(planned)
        done_before = sum(scan.finished for scan in mine)
        print(
            f"{speaker}: {plural(len(mine), 'scan')} ({done_before} done before) into {folder} on {device}"
            + (f", {plural(threads, 'thread')}" if device.type == "cpu" else ""),
            file=sys.stderr,
        )
        report = BatchReport(speaker, show_bscans=not context.is_distributed)
        try:
            rows = drive(
                predict_batch(mine, model, identity, args.device, args.batch_size, args.min_lesion_pixels), report
            )
        except KeyboardInterrupt:
            end_progress_line()
            print(
                f"{speaker}: interrupted after {report.finished} of {len(mine)} scans: the masks written are kept; "
                "run the same command again to finish (finished masks are skipped).",
                file=sys.stderr,
            )
            return 130
        everyone = [row for rows_of_one in context.all_gather_object(rows) for row in rows_of_one]
        failed = sum(row.status == FAILED for row in everyone)
        if context.is_main:
            write_summary(summary, everyone, earlier_rows(summary, everyone))
            skipped = sum(row.status == SKIPPED for row in everyone)
            print(
                f"wrote {plural(len(everyone) - skipped - failed, 'mask')} to {folder} ({skipped} done before, "
                f"{failed} failed); summary: {summary}"
            )
            if failed:
                print(
                    f"octfluid predict: {failed} of {plural(len(everyone), 'scan')} failed: their errors are in "
                    f"{summary}.",
                    file=sys.stderr,
                )
        # torchrun stops every process once one exits with an error: the others wait until the summary is written,
        # and the main process alone carries the batch's status
        context.barrier()
    return 1 if failed and context.is_main else 0


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class BatchReport:
    """A batch's progress on stderr: each scan's B-scans on a line that its outcome then replaces. Between the
    processes of a sharded batch, which share one terminal, only the outcomes, each naming its process."""

    def __init__(self, speaker: str, show_bscans: bool) -> None:
        self.speaker, self.show_bscans = speaker, show_bscans
        self.current, self.finished = "", 0

    def __call__(self, event) -> None:
        from ..batch import FAILED, OK, ScanFinished, ScanStarted
        from ..events import Notice
        from ..inference import PredictProgress

        if isinstance(event, ScanStarted):
            self.current = f"[{event.position}/{event.count}] {Path(event.source).name}"
        elif isinstance(event, PredictProgress) and self.show_bscans:
            status_line(f"{self.current}: {event.done}/{event.total} B-scans")
        elif isinstance(event, Notice):
            end_progress_line()
            print(f"{self.speaker}: {self.current}: {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, ScanFinished):
            row = event.row
            self.finished += 1
            if row.status == FAILED:
                outcome = f"failed: {row.error}"
            else:
                volume = "" if row.fluid_volume_nl is None else f", {row.fluid_volume_nl:.4g} nL"
                outcome = (
                    f"{'ok' if row.status == OK else 'done before'}: fluid in {row.fluid_bscans} of {row.bscans} "
                    f"B-scans, {row.fluid_pixels} pixels{volume} ({row.seconds:.1f} s)"
                )
            text = f"{self.current}: {outcome}"
            if self.show_bscans:
                status_line(text, final=True)
            else:
                print(f"{self.speaker}: {text}", file=sys.stderr, flush=True)
