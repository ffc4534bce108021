"""What the commands share: the error type the user can fix, progress lines, and applying command-line settings."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Callable

DEVICES = ("auto", "cpu", "cuda", "mps")  # napari_octfluid.devices.DEVICE_CHOICES, without importing torch here


class CommandError(Exception):
    """A problem the user can fix, reported as one line on stderr with a non-zero exit."""


def spacing_text(spacing_mm) -> str:
    return ", ".join("unknown" if s is None else f"{s * 1e3:.4g} um" for s in spacing_mm)


_progress = {"open": False}  # whether stderr's last line is a progress line still to be ended


def end_progress_line() -> None:
    """End a progress line left open (``\r``-overwritten), so that an error starts on a line of its own."""
    if _progress["open"]:
        print(file=sys.stderr, flush=True)
        _progress["open"] = False


def _progress_print(text: str, end: str) -> None:
    print(text, end=end, file=sys.stderr, flush=True)
    _progress["open"] = not end


def progress_line(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    _progress_print(f"\r{done}/{total} B-scans ({rate:.1f}/s)", "\n" if done == total else "")


def status_line(text: str, final: bool = False) -> None:
    """A line that the next one overwrites (``final``: the one that stays), padded to cover a longer one before
    it: a batch shows each scan's progress and then its outcome on one line."""
    width = _progress.get("width", 0) if _progress["open"] else 0
    _progress_print(f"\r{text.ljust(width)}", "\n" if final else "")
    _progress["width"] = 0 if final else len(text)


def report_training(event) -> None:
    """One progress line per training step (overwritten) and one per epoch, on stderr."""
    from ..events import Notice
    from ..training.engine import EpochEnd, StepEnd

    if isinstance(event, Notice):
        end_progress_line()
        print(f"octfluid train: {event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, StepEnd):
        _progress_print(
            f"\rstep {event.step}/{event.total_steps} loss {event.loss:.4f} eta {event.eta_s / 60:.1f} min", ""
        )
    elif isinstance(event, EpochEnd):
        val = f" val Dice {event.val_dice:.4f} Jaccard {event.val_jaccard:.4f}" if event.val_dice is not None else ""
        _progress_print(
            f"\repoch {event.epoch}/{event.epochs} loss {event.train_loss:.4f} train Dice "
            f"{event.train_dice:.4f}{val}{' *' if event.improved else ''}",
            "\n",
        )


# TrainConfig field -> the command-line option (argparse dest) that sets it
TRAIN_OPTIONS = {
    "loss": "loss",
    "epochs": "epochs",
    "steps_per_epoch": "steps_per_epoch",
    "batch_size": "batch_size",
    "learning_rate": "lr",
    "device": "device",
    "seed": "seed",
    "trainable": "trainable",
    "change_kept": "change_kept",
    "start_pull": "start_pull",
}


def override(config, args: argparse.Namespace):
    """Command-line settings win over the recipe's or the preset's (each command offers some of them); returns
    ``config``, changed in place."""
    for key, name in TRAIN_OPTIONS.items():
        value = getattr(args, name, None)
        if value is not None:
            setattr(config, key, value)
    if getattr(args, "no_noise_augmentation", False) and config.augment is not None:
        # the paper's robustness test asks for the same figures without noise in training (Darooei et al. 2023,
        # Table 4)
        config.augment = dataclasses.replace(config.augment, noise_probability=0.0)
    return config


def load_subjects(images: list[str], labels: list[str]) -> list:
    """Subjects from pairs of scan and labels files, the labels as the model learns them (labels.training_labels)."""
    from ..io import read_volume
    from ..labels import LabelsError, training_labels
    from ..subjects import Subject

    if len(images) != len(labels):
        raise CommandError(f"give one --labels file per --images file ({len(images)} images, {len(labels)} labels).")
    subjects = []
    for image_path, label_path in zip(images, labels):
        image, label = read_volume(image_path).require_scan(), read_volume(label_path)
        if image.data.shape != label.data.shape:
            raise CommandError(
                f"{Path(label_path).name} has shape {label.data.shape} but "
                f"{Path(image_path).name} has {image.data.shape}: they must match."
            )
        if not label.is_labels:
            raise CommandError(f"{Path(label_path).name} holds intensities, not labels.")
        try:
            converted = training_labels(
                label.data, Path(label_path).name, notify=lambda remark: print(f"octfluid: {remark}", file=sys.stderr)
            )
        except LabelsError as error:
            raise CommandError(str(error)) from None
        name = Path(image_path).stem  # each file is its own group in evaluation tables
        subjects.append(
            Subject(name=name, images=image.data, labels=converted, dataset=name, spacing_mm=image.spacing_mm)
        )
    return subjects


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (argparse names the option in its message)."""

    def whole_number(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return whole_number


positive_int = int_at_least(1)


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero (a learning rate: NaN, infinite or negative ones ruin a run silently)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of at least zero (a noise level)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


class SpacingAction(argparse.Action):
    """``--spacing Z Y X`` in micrometres, stored in millimetres after the rule the Quantify widget uses too
    (:func:`napari_octfluid.spacing.spacing_mm_from_um`), so that the argparse error names the option."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from ..spacing import SpacingError, spacing_mm_from_um

        try:
            setattr(namespace, self.dest, spacing_mm_from_um(tuple(values)))
        except SpacingError as error:
            raise argparse.ArgumentError(
                self, f"{error} {option_string} takes micrometres, e.g. 120 3.9 11.8."
            ) from None


def add_spacing_option(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--spacing Z Y X`` in micrometres (the unit everywhere a user types a spacing), checked as the Quantify
    widget checks it (``SpacingAction``); ``args.spacing`` holds millimetres, octfluid's internal unit."""
    parser.add_argument(
        "--spacing",
        nargs=3,
        type=float,
        action=SpacingAction,
        metavar=("Z", "Y", "X"),
        help=f"spacing in micrometres (um) between B-scans, along depth and along width{purpose}",
    )


def spacing_given_over_file(command: str, given_mm, volume, name: str) -> tuple:
    """``--spacing`` where given, the file's spacing elsewhere (``spacing.given_over_recorded``); a notice on
    stderr names each axis where the typed value replaces a different one the file records."""
    from ..spacing import given_over_recorded

    chosen, replaced = given_over_recorded(given_mm, volume.spacing_mm)
    if replaced:
        print(
            f"octfluid {command}: notice: --spacing replaces the spacing {name} records ({'; '.join(replaced)}).",
            file=sys.stderr,
        )
    return chosen


def add_overwrite_option(parser: argparse.ArgumentParser, files: str) -> None:
    """``--overwrite``: without it, a command refuses to replace a file that exists (``outputs.check_outputs``)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {files} if it exists")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: the commands that run the model on the CPU share one option and one default."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for the model (default: the cores free now, or OMP_NUM_THREADS where set)",
    )


def apply_threads(requested: int | None) -> int:
    """Set torch's thread count to ``--threads``, or to the default the widgets use too
    (:func:`napari_octfluid.devices.choose_threads`); returns it."""
    import torch

    from ..devices import choose_threads

    threads = choose_threads(requested)
    torch.set_num_threads(threads)
    return threads


def report_unfinished_run(command: str, weights, payload: dict) -> None:
    """Say so when a checkpoint comes from a training run that never finished (killed before its result, the
    calibrated threshold included, was stored): it works, but is not what the run would have produced."""
    from ..training.engine import RUN_FINISHED

    if payload.get(RUN_FINISHED) is False:
        print(
            f"octfluid {command}: {Path(weights).name} comes from a training run that did not finish (it was "
            "stopped before its end or its calibration): use a finished run's checkpoint for results that count.",
            file=sys.stderr,
        )


def add_shift_option(parser: argparse.ArgumentParser) -> None:
    """``--shift NAME ...``: also evaluate under these appearance shifts (``evaluate``, ``crossval``)."""
    from ..shifts import SHIFTS  # numpy only: the names for --help

    parser.add_argument(
        "--shift",
        nargs="+",
        default=[],
        metavar="NAME",
        help="also evaluate under these appearance shifts at their default strengths ('all' for every one): "
        + ", ".join(SHIFTS),
    )


def shift_names(requested: list[str]) -> list[str]:
    """The shifts asked for, in the registry's order for ``all``, or a :class:`CommandError` naming the unknown."""
    from ..shifts import SHIFTS

    if "all" in requested:
        return list(SHIFTS)
    unknown = [name for name in requested if name not in SHIFTS]
    if unknown:
        raise CommandError(f"no shift named {', '.join(unknown)}; the shifts are: {', '.join(SHIFTS)} (or all).")
    return list(dict.fromkeys(requested))
