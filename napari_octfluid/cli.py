"""The ``octfluid`` command: the same core as the napari plugin, for batch work without a screen."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .events import drive
from .training.parts import TRAINABLE_PARTS

HEADLESS_RESULTS = Path("octfluid-results")


class CommandError(Exception):
    """A problem the user can fix, reported as one line on stderr with a non-zero exit."""


def _spacing_text(spacing_mm) -> str:
    return ", ".join("unknown" if s is None else f"{s * 1e3:.4g} um" for s in spacing_mm)


def cmd_info(args: argparse.Namespace) -> int:
    from .io import read_volume

    volume = read_volume(args.scan)
    print(f"file:      {volume.meta.get('source')}")
    print(f"format:    {volume.meta.get('format')}")
    print(f"shape:     {volume.n_bscans} B-scans x {volume.data.shape[1]} x {volume.data.shape[2]} ({volume.data.dtype})")
    print(f"spacing:   {_spacing_text(volume.spacing_mm)} (B-scan, depth, width; from {volume.meta.get('spacing_source')})")
    print(f"content:   {'labels' if volume.is_labels else 'OCT intensities'}")
    for key in ("laterality", "device", "acquired"):
        if key in volume.meta:
            print(f"{key + ':':<10} {volume.meta[key]}")
    return 0


def _progress_line(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    end = "\n" if done == total else ""
    print(f"\r{done}/{total} B-scans ({rate:.1f}/s)", end=end, file=sys.stderr, flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference import PredictNotice, PredictProgress, PredictStarted, predict
    from .io import read_volume, write_tiff
    from .model import load_model
    from .preprocess import BscanError
    from .weights import NO_WEIGHTS_MESSAGE, default_weights_path

    if Path(args.output).resolve() == Path(args.input).resolve():
        raise CommandError(f"the output {args.output} is the scan itself: choose another file for the mask.")
    volume = read_volume(args.input)  # a bad input is reported before anything else
    weights = args.weights or default_weights_path()
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    model, _ = load_model(weights)
    def report(event) -> None:
        if isinstance(event, PredictStarted):
            print(f"octfluid predict: {event.n_bscans} B-scans on {event.device}, batch {event.batch_size}",
                  file=sys.stderr)
        elif isinstance(event, PredictProgress):
            _progress_line(event.done, event.total, event.elapsed_s)
        elif isinstance(event, PredictNotice):
            print(f"octfluid predict: {event.message}", file=sys.stderr)

    try:  # predict() checks the B-scans before any work; the message gains the file's name
        result = drive(predict(volume.data, model, device=args.device, batch_size=args.batch_size), report)
    except BscanError as error:
        raise BscanError(f"{Path(args.input).name}: {error}") from None
    meta = {**volume.meta, "model": str(weights)}
    write_tiff(args.output, volume.as_source_shape(result.labels), volume.spacing_mm, meta, kind="labels")
    if args.probabilities:
        write_tiff(args.probabilities, volume.as_source_shape(result.fluid_probability), volume.spacing_mm, meta,
                   kind="image")
    from .quantify import fluid_pixels_per_bscan

    per_bscan = fluid_pixels_per_bscan(result.labels)
    print(f"wrote {args.output}: fluid in {int((per_bscan > 0).sum())} of {volume.n_bscans} B-scans, "
          f"{int(per_bscan.sum())} pixels ({result.seconds:.1f} s on {result.device})")
    return 0


def cmd_quantify(args: argparse.Namespace) -> int:
    from .io import read_volume
    from .quantify import summarize_fluid, write_summary_csv

    volume = read_volume(args.labels)
    if not volume.is_labels:
        raise CommandError(f"{Path(args.labels).name} holds OCT intensities, not labels: give the fluid mask file.")
    spacing = tuple(args.spacing) if args.spacing else volume.spacing_mm
    summary = summarize_fluid(volume.data, spacing)
    print(f"B-scans with fluid: {int((summary.pixels_per_bscan > 0).sum())} of {volume.n_bscans}")
    print(f"fluid pixels:       {summary.total_pixels}")
    if summary.area_mm2_per_bscan is None:
        print("fluid area:         spacing unknown (give --spacing Z Y X in mm)")
    else:
        print(f"fluid area:         {summary.area_mm2_per_bscan.sum():.5f} mm^2 (sum over B-scans)")
    if summary.volume_mm3 is None:
        print("fluid volume:       spacing unknown (give --spacing Z Y X in mm)")
    else:
        print(f"fluid volume:       {summary.volume_mm3:.5f} mm^3 = {summary.volume_nl:.2f} nL")
        for label, pixels in summary.pixels_per_class.items():
            print(f"  class {label}:          {pixels.sum() * summary.voxel_mm3:.5f} mm^3")
    sectors = _etdrs(args, volume, spacing) if args.etdrs else None
    if args.csv:
        print(f"wrote {write_summary_csv(args.csv, summary, sectors)}")
    return 0


def _etdrs(args: argparse.Namespace, labels, spacing) -> dict[str, float]:
    """Fluid per ETDRS sector, around the fovea given, detected in --scan, or at the scan centre."""
    from .etdrs import Fovea, etdrs_fluid_volumes, find_fovea
    from .io import read_volume

    if args.fovea:
        fovea = Fovea(*args.fovea, "given")
    elif args.scan:
        fovea = find_fovea(read_volume(args.scan).data, spacing)
    else:
        z, _, x = labels.data.shape
        fovea = Fovea((z - 1) / 2, (x - 1) / 2, "scan centre (give --fovea or --scan to place it)")
    laterality = args.laterality or labels.meta.get("laterality") or None
    volumes = etdrs_fluid_volumes(labels.data, spacing, fovea, laterality, args.first_bscan)
    print(f"ETDRS grid around the fovea at B-scan {fovea.bscan:.1f}, A-scan {fovea.column:.1f} ({fovea.how}); "
          f"eye {laterality or 'unknown'}; first B-scan {args.first_bscan}")
    for sector, mm3 in volumes.items():
        print(f"  {sector:<16} {mm3:.5f} mm^3 = {mm3 * 1000:.2f} nL")
    return volumes


def _volume_pairs(images: list[str], labels: list[str]) -> list:
    from .io import read_volume

    if len(images) != len(labels):
        raise CommandError(f"give one --labels file per --images file ({len(images)} images, {len(labels)} labels).")
    pairs = []
    for image_path, label_path in zip(images, labels):
        image, label = read_volume(image_path), read_volume(label_path)
        if image.data.shape != label.data.shape:
            raise CommandError(f"{Path(label_path).name} has shape {label.data.shape} but "
                               f"{Path(image_path).name} has {image.data.shape}: they must match.")
        if not label.is_labels:
            raise CommandError(f"{Path(label_path).name} holds intensities, not labels.")
        pairs.append((image.data, _fluid_labels(label.data, Path(label_path).name), Path(image_path).stem))
    return pairs


def _fluid_labels(data, name: str):
    """Labels as the two-class model learns them: 0 background, 1 fluid (any other positive value: the model
    does not separate fluid types), 255 unknown. Values that are not whole numbers from 0 to 255 are refused."""
    import numpy as np

    from .training.shared_data import IGNORE

    if not np.issubdtype(data.dtype, np.integer):
        if not np.isfinite(data).all() or not (data == np.round(data)).all():
            raise CommandError(f"{name} holds values that are not whole numbers (NaN, Inf or fractions): labels "
                               f"must be 0 for background and 1 for fluid.")
    if data.min() < 0 or data.max() > IGNORE:
        raise CommandError(f"{name} holds values outside 0..255 ({data.min()}..{data.max()}): labels must be 0 "
                           f"for background, 1 for fluid, 255 for unknown.")
    data = data.astype(np.uint8)
    others = sorted(set(np.unique(data).tolist()) - {0, 1, IGNORE})
    if others:
        print(f"octfluid: {name} holds label values {others}: counted as fluid (the model has one fluid class).",
              file=sys.stderr)
        data = np.where((data > 0) & (data != IGNORE), 1, data).astype(np.uint8)
    return data


def _report_training(event) -> None:
    """One progress line per training step (overwritten) and one per epoch, on stderr."""
    from .training.engine import EpochEnd, StepEnd, TrainNotice

    if isinstance(event, TrainNotice):
        print(f"\noctfluid train: {event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, StepEnd):
        print(f"\rstep {event.step}/{event.total_steps} loss {event.loss:.4f} "
              f"eta {event.eta_s / 60:.1f} min", end="", file=sys.stderr, flush=True)
    elif isinstance(event, EpochEnd):
        val = f" val Dice {event.val_dice:.4f} Jaccard {event.val_jaccard:.4f}" if event.val_dice is not None else ""
        print(f"\repoch {event.epoch}/{event.epochs} loss {event.train_loss:.4f} train Dice "
              f"{event.train_dice:.4f}{val}{' *' if event.improved else ''}", file=sys.stderr, flush=True)


def _override(config, args: argparse.Namespace) -> None:
    """Command-line settings win over the recipe's (each command offers some of them)."""
    names = {"loss": "loss", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch", "batch_size": "batch_size",
             "learning_rate": "lr", "device": "device", "seed": "seed", "trainable": "trainable",
             "change_kept": "change_kept"}
    for key, name in names.items():
        value = getattr(args, name, None)
        if value is not None:
            setattr(config, key, value)
    if getattr(args, "no_noise_augmentation", False) and config.augment is not None:
        # the paper's robustness test asks for the same figures without noise in training (Table 4)
        config.augment = dataclasses.replace(config.augment, noise_probability=0.0)


def _share_of_change(text: str) -> float:
    from .training.blend import check_change_kept

    try:
        return check_change_kept(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _shipped_replay():
    from .training.replay import REPLAY_CROPS, load_replay_crops

    replay = load_replay_crops()
    if replay is None:
        raise CommandError(f"--replay: this installation has no replay crops ({REPLAY_CROPS} is missing).")
    return replay


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from .model import MODEL_CONFIGS, TransUNet, load_model
    from .training.data import BscanSet
    from .training.engine import TrainConfig, train
    from .training.recipe import load_recipe

    if args.recipe:
        recipe = load_recipe(args.recipe)
        model, config = TransUNet(recipe.model_config), recipe.train_config
        train_data, val_data = recipe.train_data, recipe.val_data
    else:
        if not args.images:
            raise CommandError("give --recipe FILE, or --images and --labels.")
        train_data = BscanSet.from_volumes(_volume_pairs(args.images, args.labels))
        val_data = (BscanSet.from_volumes(_volume_pairs(args.val_images, args.val_labels))
                    if args.val_images else None)
        model = load_model(args.init)[0] if args.init else TransUNet(MODEL_CONFIGS[args.model])
        config = TrainConfig()
    _override(config, args)
    replay_data = _shipped_replay() if args.replay else None
    out = Path(args.out)
    print(f"octfluid train: {train_data.summary()['bscans']} training B-scans, "
          f"{val_data.summary()['bscans'] if val_data else 0} validation B-scans, loss {config.loss}, "
          f"{config.epochs} x {config.steps_per_epoch} steps -> {out}/", file=sys.stderr)
    started = time.perf_counter()
    result = drive(train(model, train_data, val_data, config, out_dir=out, replay_data=replay_data),
                   _report_training)
    minutes = (time.perf_counter() - started) / 60
    print(f"best checkpoint: {result.best_checkpoint}; last: {result.last_checkpoint} ({minutes:.1f} min"
          f"{', stopped early' if result.stopped_early else ''})")
    if result.best_checkpoint is None or result.model.config.num_classes != 2:
        return 0
    if args.init and not args.recipe and result.model.decision_threshold is not None:
        # chosen again on a few corrected B-scans, the threshold made every subject of the fine-tuning benchmark
        # worse (docs/finetune_benchmark.md, --recalibrate): keep the one the starting weights were calibrated with
        print(f"decision threshold {result.model.decision_threshold:.2f} kept from {args.init}")
    else:
        calibrate_checkpoint(result.best_checkpoint, train_data)
    return 0


def calibrate_checkpoint(path, train_data) -> float:
    """Choose the fluid threshold on the training B-scans and store it in the checkpoint."""
    from .model import load_model, save_checkpoint
    from .training.calibrate import calibrate_threshold

    model, payload = load_model(path)
    threshold, dice = calibrate_threshold(model, train_data)
    model.decision_threshold = threshold
    extra = {k: v for k, v in payload.items()
             if k not in ("format", "version", "model_config", "model_state", "decision_threshold")}
    save_checkpoint(path, model, **{**extra, "threshold_dice_on_training": dice})
    print(f"decision threshold {threshold:.2f} (pooled Dice on the training B-scans {dice[threshold]:.4f}; "
          f"argmax-equivalent 0.50: {dice[0.5]:.4f}) stored in {path}")
    return threshold


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .training.recipe import load_recipe

    calibrate_checkpoint(args.weights, load_recipe(args.recipe).train_data)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate, format_table, grader_rows, markdown_table, write_csv
    from .model import load_model
    from .weights import NO_WEIGHTS_MESSAGE, default_weights_path

    weights = args.weights or default_weights_path()
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    if args.recipe:
        from .training.recipe import recipe_subjects

        subjects = recipe_subjects(args.recipe, "validation")
        volumes = [(s.name, s.dataset, s.images, s.labels) for s in subjects]
        graders = [(s.dataset, s.second_grader, s.labels) for s in subjects if s.second_grader is not None]
    else:
        if not args.images:
            raise CommandError("give --images and --labels, or --recipe FILE.")
        volumes = [(name, name, image, label) for image, label, name in _volume_pairs(args.images, args.labels)]
        graders = []
    model, _ = load_model(weights)
    rows = evaluate(model, volumes, args.noise_sigma, args.device, args.batch_size) + grader_rows(graders)
    print(f"weights: {weights}")
    print(markdown_table(rows) if args.markdown else format_table(rows))
    if args.csv:
        print(f"wrote {write_csv(args.csv, rows)}")
    return 0


def cmd_crossval(args: argparse.Namespace) -> int:
    import torch

    from .evaluation import format_table, markdown_table, write_csv
    from .training.crossval import FoldEnd, FoldStarted, cross_validate
    from .training.recipe import load_recipe, recipe_subjects

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    config = recipe.train_config
    _override(config, args)
    subjects = recipe_subjects(args.recipe, "train") + recipe_subjects(args.recipe, "validation")

    def report(event) -> None:
        if isinstance(event, FoldStarted):
            print(f"fold {event.fold}/{event.folds}: holding out {', '.join(event.held_out)}", file=sys.stderr)
        elif isinstance(event, FoldEnd):
            print(f"fold {event.fold}/{event.folds}: {event.train_minutes:.1f} min, threshold {event.threshold:.2f}\n"
                  f"{format_table(event.rows)}", file=sys.stderr, flush=True)
        else:
            _report_training(event)

    print(f"octfluid crossval: {len(subjects)} subjects, {args.folds} folds, loss {config.loss}, "
          f"{config.epochs} x {config.steps_per_epoch} steps of {config.batch_size} per fold", file=sys.stderr)
    result = drive(cross_validate(subjects, args.folds, recipe.model_config, config, tuple(args.noise_sigma),
                                  args.out, reuse=args.reuse, only=args.only_folds), report)
    print(markdown_table(result.rows + [r for f in result.folds for r in f.rows]) if args.markdown
          else format_table(result.rows))
    print(f"training time per fold: {', '.join(f'{f.train_minutes:.1f}' for f in result.folds)} min")
    if args.csv:
        print(f"wrote {write_csv(args.csv, result.rows + [r for f in result.folds for r in f.rows])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Headless tour of the sample: what the reader sees, the expert fluid quantified, an overlay picture."""
    import imageio.v3 as iio

    from ._sample_data import SAMPLE_MASK, SAMPLE_SCAN
    from .io import read_volume
    from .overlay import overlay_rgb
    from .quantify import summarize_fluid, write_summary_csv

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd_info(argparse.Namespace(scan=SAMPLE_SCAN))
    scan, mask = read_volume(SAMPLE_SCAN), read_volume(SAMPLE_MASK)
    summary = summarize_fluid(mask.data, mask.spacing_mm)
    write_summary_csv(out / "sample_expert_fluid.csv", summary)
    most_fluid = int(summary.pixels_per_bscan.argmax())
    iio.imwrite(out / f"sample_bscan{most_fluid:02d}_expert_fluid.png", overlay_rgb(scan.data[most_fluid], mask.data[most_fluid]))
    from . import weights

    if weights.default_weights_path() is not None:
        predicted = out / "sample_predicted_fluid.tif"
        cmd_predict(argparse.Namespace(input=str(SAMPLE_SCAN), output=str(predicted), weights=None, device="auto",
                                       batch_size=None, probabilities=None))
        labels = read_volume(predicted).data
        write_summary_csv(out / "sample_predicted_fluid.csv", summarize_fluid(labels, scan.spacing_mm))
        iio.imwrite(out / f"sample_bscan{most_fluid:02d}_predicted_fluid.png",
                    overlay_rgb(scan.data[most_fluid], labels[most_fluid]))
    else:
        print("(no trained weights installed: the demo shows the expert's mask only)")
    print(f"Results written to {out.resolve()}/ (fluid per B-scan as CSV, B-scan {most_fluid} with fluid as PNG)")
    return 0


def screen_available() -> bool:
    """Whether Qt can open a window here, asked in a child process: Qt aborts the process that fails."""
    probe = "from qtpy.QtWidgets import QApplication; QApplication([])"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cmd_view(args: argparse.Namespace) -> int:
    if not screen_available():
        print(f"No screen available for napari: running the headless demo instead, results in {HEADLESS_RESULTS}/")
        return cmd_demo(argparse.Namespace(out=HEADLESS_RESULTS))
    import napari
    from qtpy.QtCore import QTimer

    viewer = napari.Viewer()
    viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    if args.scan:
        viewer.open(args.scan, plugin="octfluid")
    else:
        viewer.open_sample("octfluid", "duke_subject01")
    QTimer.singleShot(300, viewer.reset_view)  # fit the scan once the window has its final size
    napari.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="octfluid", description=__doc__)
    parser.add_argument("--version", action="version", version=f"octfluid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="show what octfluid reads from a scan: shape, spacing, metadata")
    info.add_argument("scan")
    info.set_defaults(run=cmd_info)

    predict = sub.add_parser("predict", help="segment fluid in a scan into a uint8 TIFF mask")
    predict.add_argument("input")
    predict.add_argument("-o", "--output", required=True)
    predict.add_argument("--weights")
    predict.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    predict.add_argument("--batch-size", type=int)
    predict.add_argument("--probabilities")
    predict.set_defaults(run=cmd_predict)

    training = sub.add_parser("train", help="train or fine-tune the model on labelled B-scans")
    training.add_argument("--recipe", help="a TOML recipe (data, model, settings), e.g. recipes/default_weights.toml")
    training.add_argument("--images", nargs="+", default=[])
    training.add_argument("--labels", nargs="+", default=[])
    training.add_argument("--val-images", nargs="+", default=[])
    training.add_argument("--val-labels", nargs="+", default=[])
    training.add_argument("--init", help="checkpoint to start from (fine-tuning)")
    training.add_argument("--replay", action="store_true",
                          help="fill half of every batch with the crops shipped beside the default weights, so that "
                               "fine-tuning on a few B-scans does not forget the rest")
    training.add_argument("--model", default="paper", help="model configuration when starting from scratch")
    training.add_argument("--loss", help="a loss name or a weighted sum, e.g. '1*dice + 1*focal_tversky + 1*wbce'")
    training.add_argument("--epochs", type=int)
    training.add_argument("--steps-per-epoch", type=int)
    training.add_argument("--batch-size", type=int)
    training.add_argument("--lr", type=float)
    training.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    training.add_argument("--seed", type=int)
    training.add_argument("--trainable", choices=list(TRAINABLE_PARTS),
                          help="the parts that learn: all (default), or the decoder alone (fine-tuning on a few "
                               "B-scans: the encoder and transformer keep what the starting weights learnt)")
    training.add_argument("--change-kept", type=_share_of_change, metavar="SHARE",
                          help="keep this share (0-1] of the change from the --init weights (WiSE-FT; default 1): "
                               "0.5 loses less on other scans after fine-tuning on a few B-scans")
    training.add_argument("--out", default="octfluid-training", help="folder for best.pt and last.pt")
    training.set_defaults(run=cmd_train)

    calibrating = sub.add_parser("calibrate", help="choose a checkpoint's fluid threshold on a recipe's training data "
                                                   "(octfluid train does this itself)")
    calibrating.add_argument("--weights", required=True)
    calibrating.add_argument("--recipe", required=True)
    calibrating.set_defaults(run=cmd_calibrate)

    evaluating = sub.add_parser("evaluate", help="Dice and Jaccard of the model against expert labels, with noise")
    evaluating.add_argument("--images", nargs="+", default=[])
    evaluating.add_argument("--labels", nargs="+", default=[])
    evaluating.add_argument("--recipe", help="evaluate on a recipe's validation subjects (with grader 2 where known)")
    evaluating.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    evaluating.add_argument("--noise-sigma", nargs="+", type=float, default=[0.0],
                            help="Gaussian noise added to the images, in grey levels (the paper's Table 4 test)")
    evaluating.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    evaluating.add_argument("--batch-size", type=int)
    evaluating.add_argument("--csv", help="also write the table to this CSV file")
    evaluating.add_argument("--markdown", action="store_true", help="print the table in Markdown (for a model card)")
    evaluating.set_defaults(run=cmd_evaluate)

    crossval = sub.add_parser("crossval", help="k-fold cross-validation by subject of a recipe (pooled held-out "
                                               "Dice and Jaccard, with noise, and grader 2)")
    crossval.add_argument("--recipe", required=True, help="its train and validation subjects are pooled and refolded")
    crossval.add_argument("--folds", type=int, default=5)
    for name, kind in (("--loss", str), ("--epochs", int), ("--steps-per-epoch", int), ("--batch-size", int),
                       ("--lr", float), ("--seed", int), ("--threads", int)):
        crossval.add_argument(name, type=kind)
    crossval.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    crossval.add_argument("--noise-sigma", nargs="+", type=float, default=[0.0])
    crossval.add_argument("--no-noise-augmentation", action="store_true",
                          help="train without Gaussian noise augmentation (the noise-robustness ablation)")
    crossval.add_argument("--out", default="octfluid-crossval", help="folder for each fold's checkpoints")
    crossval.add_argument("--csv", help="also write the table (pooled and per fold) to this CSV file")
    crossval.add_argument("--markdown", action="store_true", help="print the table in Markdown (for a model card)")
    crossval.add_argument("--reuse", action="store_true",
                          help="test folds already trained in --out again instead of training them (resume, re-evaluate)")
    crossval.add_argument("--only-folds", nargs="+", type=int, metavar="FOLD",
                          help="train and test only these folds (from 1), e.g. to run folds in parallel processes; "
                               "then --reuse pools them all")
    crossval.set_defaults(run=cmd_crossval)

    quantify = sub.add_parser("quantify", help="fluid area per B-scan and fluid volume from a labels file")
    quantify.add_argument("labels")
    quantify.add_argument("--spacing", nargs=3, type=float, metavar=("Z", "Y", "X"),
                          help="spacing in mm between B-scans, along depth and along width")
    quantify.add_argument("--csv", help="write fluid per B-scan, per class, totals (and ETDRS) to this CSV file")
    quantify.add_argument("--etdrs", action="store_true", help="fluid volume per ETDRS sector (needs the spacing)")
    quantify.add_argument("--fovea", nargs=2, type=float, metavar=("BSCAN", "ASCAN"),
                          help="the fovea's position (default: detected in --scan, else the scan centre)")
    quantify.add_argument("--scan", help="the OCT scan of these labels, to detect the fovea in")
    quantify.add_argument("--laterality", choices=["OD", "OS"], help="the eye (default: from the file)")
    quantify.add_argument("--first-bscan", choices=["superior", "inferior"], default="superior",
                          help="which edge of the macula the first B-scan crosses")
    quantify.set_defaults(run=cmd_quantify)

    view = sub.add_parser("view", help="open napari with a scan (default: the sample) and octfluid's widgets")
    view.add_argument("scan", nargs="?")
    view.set_defaults(run=cmd_view)

    demo = sub.add_parser("demo", help="headless tour of the bundled sample, writing results to a folder")
    demo.add_argument("--out", default=str(HEADLESS_RESULTS))
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .io import OctReadError
    from .quantify import SpacingUnknownError

    user_errors: tuple[type[BaseException], ...] = (CommandError, OctReadError, SpacingUnknownError,
                                                    FileNotFoundError, IsADirectoryError, PermissionError, MemoryError)
    if args.command in ("predict", "train", "evaluate", "crossval", "calibrate"):  # only these need torch; quantify/info stay light
        from .devices import DeviceUnavailableError
        from .model import CheckpointError
        from .preprocess import BscanError
        from .training.engine import TrainingDataError

        user_errors += (BscanError, CheckpointError, DeviceUnavailableError, TrainingDataError)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"octfluid {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except user_errors as exc:
        print(f"octfluid {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
