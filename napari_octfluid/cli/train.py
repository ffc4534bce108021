"""``octfluid train``: train from a recipe or labelled files, or fine-tune (``--init``) with the same preset as the
Fine-tune widget.

Under ``torchrun`` the processes train one model with DistributedDataParallel (``--batch-size`` is the batch of all
of them together); rank 0 alone prints, writes the checkpoints and calibrates (training/data_parallel.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
from pathlib import Path

from ._common import (
    DEVICES,
    CommandError,
    add_threads_option,
    apply_threads,
    load_subjects,
    override,
    positive_float,
    positive_int,
    report_training,
    report_unfinished_run,
)


def checked_float(module: str, check: str):
    """An argparse type: a number that the training core's ``module.check`` accepts, its message shown where it does
    not. The module is imported only when the option is given: it imports torch, which ``octfluid --help`` need not."""

    def parse(text: str) -> float:
        try:
            return getattr(importlib.import_module(module, __package__), check)(float(text))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def add_parser(sub) -> None:
    from ..training.parts import TRAINABLE_PARTS

    parser = sub.add_parser("train", help="train or fine-tune the model on labelled B-scans")
    parser.add_argument("--recipe", help="a TOML recipe (data, model, settings), e.g. recipes/default_weights.toml")
    parser.add_argument("--images", nargs="+", default=[])
    parser.add_argument("--labels", nargs="+", default=[])
    parser.add_argument("--val-images", nargs="+", default=[])
    parser.add_argument("--val-labels", nargs="+", default=[])
    parser.add_argument(
        "--init",
        help="checkpoint to start from: fine-tuning, with the Fine-tune widget's preset "
        "(decoder only, half of the change kept, lr 1e-4, replay) unless overridden; with --recipe, the "
        "recipe's training from these weights on",
    )
    parser.add_argument(
        "--replay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fill half of every batch with the crops shipped beside the default weights, so that "
        "fine-tuning on a few B-scans does not forget the rest (default: on with --init)",
    )
    parser.add_argument("--model", default="paper", help="model configuration when starting from scratch")
    parser.add_argument("--loss", help="a loss name or a weighted sum, e.g. '1*dice + 1*focal_tversky + 1*wbce'")
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--steps-per-epoch", type=positive_int)
    parser.add_argument(
        "--batch-size", type=positive_int, help="crops per step (under torchrun: of all processes together)"
    )
    parser.add_argument("--lr", type=positive_float)
    parser.add_argument("--device", choices=DEVICES)
    add_threads_option(parser)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--trainable",
        choices=list(TRAINABLE_PARTS),
        help="the parts that learn: all (default from scratch), or the decoder alone (the default "
        "with --init: the encoder and transformer keep what the starting weights learnt)",
    )
    parser.add_argument(
        "--change-kept",
        type=checked_float("..training.blend", "check_change_kept"),
        metavar="SHARE",
        help="keep this share (0-1] of the change from the --init weights (WiSE-FT; default 0.5 "
        "with --init, 1 otherwise): less loses less on other scans",
    )
    parser.add_argument(
        "--start-pull",
        type=checked_float("..training.anchor", "check_start_pull"),
        metavar="STRENGTH",
        help="after each step, move the weights back towards the --init weights by the learning rate times this "
        "(decoupled L2-SP; default 0, and 100 when --adapt fine-tunes the whole network): more forgets less of the "
        "original device and adapts less",
    )
    parser.add_argument(
        "--adapt",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --init: for labelled scans whose files give no axial pixel size, fit the one at which the starting "
        "model agrees best with the labels (training learns at it and the new model keeps it); where none was fitted, "
        "measure how far the model agrees with the labels (pooled Dice) and, below 0.8, fine-tune the whole network "
        "for 300 steps at 3e-4, held near the start (pull 100), and keep all of the change, as the Fine-tune widget "
        "does (default: on; each setting given on the command line stays as given)",
    )
    parser.add_argument(
        "--name",
        help="keep the fine-tuned model under this name in the model folder (octfluid predict --model NAME; the "
        "Predict widget offers it for scans of its device)",
    )
    parser.add_argument(
        "--for-device",
        help="with --name: the device the model is adapted to (default: the one the first --images file records)",
    )
    parser.add_argument(
        "--out",
        default="octfluid-training",
        help="folder for best.pt and last.pt (a new one, or one without a training run in it)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the training run already in --out (its best.pt and last.pt)"
    )
    parser.set_defaults(run=run)


def check_run_folder(out: Path, overwrite: bool, inputs: list) -> None:
    """Refuse, before any work, an --out that holds another run's checkpoints (unless --overwrite) or that cannot
    take them. A run replaces best.pt from its first epoch on: written into a finished run's folder, it would
    throw away that run's calibrated weights for those of a run that may still be stopped."""
    from ..outputs import OutputError, check_outputs
    from ..training.engine import RUN_FILES

    check_outputs(folders={"--out": out}, inputs=inputs)
    runs = [out / name for name in RUN_FILES]
    for path in runs:
        if any(path.exists() and Path(source).exists() and path.samefile(source) for source in inputs if source):
            # then --overwrite would destroy the starting weights (--init) before they are needed again
            raise OutputError(f"--out {out} holds {path.name}, which this run reads: choose another folder.")
    held = [path.name for path in runs if path.exists()]
    if held and not overwrite:
        # refused rather than written into a fresh subfolder: the run's results stay where the user looks for them
        raise OutputError(
            f"--out {out} already holds a training run ({', '.join(held)}): choose another folder, "
            "or pass --overwrite to replace it."
        )


def _shipped_replay():
    from ..training.replay import REPLAY_CROPS, load_replay_crops

    replay = load_replay_crops()
    if replay is None:
        raise CommandError(f"--replay: this installation has no replay crops ({REPLAY_CROPS} is missing).")
    return replay


def run(args: argparse.Namespace) -> int:
    from ..distributed import DistributedContext

    context = DistributedContext.from_environment()
    with _quiet_unless_main(context):
        return _train(args, context)


@contextlib.contextmanager
def _quiet_unless_main(context):
    """Everything the command prints, on rank 0 only: the other processes train the same model silently. Errors
    are still printed by every process that meets one (cli.main reports them after this block has ended)."""
    if context.is_main:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _train(args: argparse.Namespace, context) -> int:
    from ..devices import resolve_device
    from ..events import drive
    from ..training.engine import train
    from ..training.finetune import replay_by_default

    apply_threads(args.threads)
    args.keep_device = _checked_keep(args)  # a name that cannot be kept is refused before the training, not after
    out = Path(args.out)
    check_run_folder(
        out, args.overwrite, [*args.images, *args.labels, *args.val_images, *args.val_labels, args.init, args.recipe]
    )
    model, config, train_data, val_data, fine_tuning = _model_settings_and_data(args)
    if config.batch_size < context.world_size:
        raise CommandError(
            f"--batch-size {config.batch_size} is split over {context.world_size} processes: give at least "
            f"{context.world_size}."
        )
    replay = args.replay if args.replay is not None else fine_tuning and replay_by_default()
    replay_data = _shipped_replay() if replay else None
    print(
        f"octfluid train: {train_data.summary()['bscans']} training B-scans, "
        f"{val_data.summary()['bscans'] if val_data else 0} validation B-scans, loss {config.loss}, "
        f"{config.epochs} x {config.steps_per_epoch} steps, {config.trainable} learns"
        f"{', replay' if replay_data is not None else ''}"
        f"{f', {context.world_size} processes' if context.active else ''} -> {out}/",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with context.process_group(resolve_device(config.device)):  # left at the end, also on an error
        training = train(model, train_data, val_data, config, out_dir=out, replay_data=replay_data, distributed=context)
        result = drive(training, report_training)
    if not context.is_main:
        return 0  # rank 0 holds the checkpoints: it alone calibrates and marks the run finished
    _finish(args, result, train_data, fine_tuning, (time.perf_counter() - started) / 60)
    return 0


def _model_settings_and_data(args: argparse.Namespace):
    """The model to start from, the training settings (command-line options over the recipe's or the preset's),
    the training and validation B-scans, and whether this is fine-tuning (``--init`` without a recipe)."""
    from ..model import MODEL_CONFIGS, load_model
    from ..training.engine import TrainConfig
    from ..training.finetune import finetune_config
    from ..training.recipe import load_recipe

    fine_tuning = bool(args.init) and not args.recipe
    if args.recipe:
        recipe = load_recipe(args.recipe)
        config = override(recipe.train_config, args)
        if args.init:  # the recipe's data and settings, from the given weights (e.g. the shipped ones) on
            model, payload = load_model(args.init)
            report_unfinished_run("train", args.init, payload)
            if model.config != recipe.model_config:
                raise CommandError(
                    f"--init {args.init} holds a model of another configuration than the recipe's [model]: "
                    "give weights of that configuration, or leave --init out to train from scratch."
                )
            return model, config, recipe.train_data, recipe.val_data, False
        return _new_model(recipe.model_config, config.seed), config, recipe.train_data, recipe.val_data, False
    if not args.images:
        raise CommandError("give --recipe FILE, or --images and --labels.")
    subjects = load_subjects(args.images, args.labels)
    if not fine_tuning:
        config = override(TrainConfig(), args)
        model = _new_model(MODEL_CONFIGS[args.model], config.seed)
        return model, config, *_data_at_model_rows(args, subjects, model), False
    model, payload = load_model(args.init)
    report_unfinished_run("train", args.init, payload)
    # the widget's preset, one definition; crops fit the smallest B-scan given
    smallest = [min(s.images.shape[axis] for s in subjects) for axis in (-2, -1)]
    config = override(finetune_config(smallest), args)
    if args.adapt:  # decided on the model as it is, with whether another axial pixel size was fitted
        fitted, at_fitted_size, counted = _with_fitted_axial_spacing(model, subjects, config)
        known = [s for s in subjects if s.spacing_mm[1] is not None]  # the others were counted by the fit
        config = _adapted(model, known, counted, config, args, other_axial_size=fitted is not model)
        model, subjects = fitted, at_fitted_size
    return model, config, *_data_at_model_rows(args, subjects, model), True


def _with_fitted_axial_spacing(model, subjects, config):
    """The widget's fit of the axial pixel size (``training.finetune.with_fitted_axial_spacing``) over the subjects
    whose files give none, pooled: the model (a copy that keeps the fitted size where it changed anything;
    ``--init``'s file is left as it is), the subjects (those at the fitted size), and the fit's counts of the model
    as it is on them (None without such subjects), which the adaptive rule pools with the others'."""
    import dataclasses

    from ..axial import scan_axial_spacing
    from ..events import drive
    from ..training.finetune import with_fitted_axial_spacing

    unknown = [s for s in subjects if s.spacing_mm[1] is None]
    if not unknown:
        return model, subjects, None
    corrected = [(s.images, s.labels, s.annotated_bscans()) for s in unknown]
    fitted, fit = drive(with_fitted_axial_spacing(model, corrected, config.device), report_training)
    counted = fit.counts_by_size[fit.current_mm]
    spacing = scan_axial_spacing(fitted, None)
    if spacing is None:
        return fitted, subjects, counted
    placed = [
        dataclasses.replace(s, spacing_mm=(s.spacing_mm[0], spacing, s.spacing_mm[2])) if s.spacing_mm[1] is None else s
        for s in subjects
    ]
    return fitted, placed, counted


def _data_at_model_rows(args: argparse.Namespace, subjects, model):
    """The training and validation B-scans, those whose files give an axial spacing resampled to the model's axial
    pixel size, as prediction resamples a scan."""
    from ..axial import model_axial_spacing
    from ..training.data import BscanSet

    at = model_axial_spacing(model)
    train_data = BscanSet.from_subjects(subjects, axial_spacing_mm=at)
    validation = load_subjects(args.val_images, args.val_labels) if args.val_images else None
    return train_data, BscanSet.from_subjects(validation, axial_spacing_mm=at) if validation else None


def _adapted(model, subjects, counted, config, args: argparse.Namespace, other_axial_size: bool = False):
    """``config`` adapted to how far ``model`` agrees with the labels of ``subjects``, pooled with the counts
    already ``counted`` on the others (the fit's; None: none), and to ``other_axial_size`` (the widget's rule,
    ``training.finetune.adapted_to``, pooled over every annotated B-scan given); a setting given on the command line
    (``--epochs``, ``--lr``...) stays."""
    from ..events import drive
    from ..metrics import concatenated
    from ..training.finetune import adapted_to, agreement_counts
    from ._common import TRAIN_OPTIONS

    parts = [  # at the model's rows where the file gives the axial spacing, as training and prediction see them
        drive(
            agreement_counts(model, s.images, s.labels, s.annotated_bscans(), config.device, s.spacing_mm[1]),
            report_training,
        )
        for s in subjects
    ]
    pooled = concatenated(parts + ([] if counted is None else [counted])).pooled()
    given = {key for key, option in TRAIN_OPTIONS.items() if getattr(args, option, None) is not None}
    config, _, message = adapted_to(pooled, config, given, other_axial_size)
    print(f"octfluid train: {message}", file=sys.stderr)
    return config


def _new_model(model_config, seed: int):
    """A network to train from scratch, its starting weights drawn from ``seed``: a run is reproducible from its
    settings, and the processes of a torchrun run start where one process with the same seed starts."""
    import torch

    from ..model import TransUNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TransUNet(model_config)


def _finish(args: argparse.Namespace, result, train_data, fine_tuning: bool, minutes: float) -> None:
    """Say where the checkpoints are, calibrate the best one's threshold, and only then mark the run finished."""
    from ..training.calibrate import calibrate_checkpoint
    from ..training.engine import mark_run_finished

    print(
        f"best checkpoint: {result.best_checkpoint}; last: {result.last_checkpoint} ({minutes:.1f} min"
        f"{', stopped early' if result.stopped_early else ''})"
    )
    if result.best_checkpoint is None or result.model.config.num_classes != 2:
        pass  # nothing to calibrate: the run is finished as it is
    elif fine_tuning and result.model.decision_threshold is not None:
        # chosen again on a few corrected B-scans, the threshold made every subject of the fine-tuning benchmark
        # worse (docs/finetune_benchmark.md, --recalibrate): keep the one the starting weights were calibrated with
        print(f"decision threshold {result.model.decision_threshold:.2f} kept from {args.init}")
    else:
        print_calibration(result.best_checkpoint, *calibrate_checkpoint(result.best_checkpoint, train_data))
    # only now: a run stopped before this point leaves checkpoints that say they are not final
    mark_run_finished(result.best_checkpoint, result.last_checkpoint)
    if args.name and result.best_checkpoint is not None:
        _keep(args, result.best_checkpoint)


def _checked_keep(args: argparse.Namespace) -> str:
    """``--name`` checked as a model name, and the device to keep it for: ``--for-device``, else the device the
    first ``--images`` file records ("" for any)."""
    from ..io import read_volume
    from ..model_library import ModelNameError, model_path

    if not args.name:
        if args.for_device is not None:
            raise CommandError("--for-device names the device of a model kept by --name: give --name too.")
        return ""
    try:
        model_path(args.name)
    except ModelNameError as error:
        raise CommandError(f"--name: {error}") from None
    if args.for_device is not None:
        return args.for_device
    return read_volume(args.images[0]).meta.get("device", "") if args.images else ""


def _keep(args: argparse.Namespace, checkpoint) -> None:
    """The finished model kept by name in the model folder, for the device given or recorded by the scan."""
    from ..model_library import keep_model

    device = args.keep_device
    path = keep_model(checkpoint, args.name, device)
    print(f"kept as '{args.name}'{f' for {device}' if device else ''}: {path}")


def print_calibration(path, threshold: float, dice: dict[float, float]) -> None:
    from ..min_lesion import CHECKPOINT_KEY
    from ..model import read_checkpoint

    size = read_checkpoint(path).get(CHECKPOINT_KEY)  # chosen with the threshold, stored beside it
    print(
        f"decision threshold {threshold:.2f} (pooled Dice on the training B-scans {dice[threshold]:.4f}; "
        f"argmax-equivalent 0.50: {dice[0.5]:.4f}) and minimum lesion {size or 0} px stored in {path}"
    )
