"""Does correcting help? A simulated clinician on the shared data.

    python benchmarks/bench_finetune.py --weights napari_octfluid/weights/octfluid_default.pt --subjects umn_13
    python benchmarks/bench_finetune.py --cv-dir runs/cv --subjects umn_10 umn_06 duke_04 --k 3 --lr 1e-3

Starting from weights trained without the subject (``--weights``, or with ``--cv-dir`` the cross-validation fold
that held it out), "correct" k of its B-scans (the expert mask stands in for the correction), fine-tune on the CPU
for a fixed wall-time budget or number of steps (with replay of the base weights' training data; ``--shipped-replay``:
the crops shipped beside the weights, as the Fine-tune widget does; ``--no-replay``: none), and report
Dice on the subject's other B-scans before and after, Dice on other unseen subjects (forgetting: ``--others``, or
the fold's other held-out subjects), and wall time; then the mean change over subjects. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tomllib
import torch
from priority_candidates import mean_entropy_bits  # beside this script

from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.labels import FLUID, pooled_counts
from napari_octfluid.model import load_model
from napari_octfluid.training.blend import blend_weights, starting_state
from napari_octfluid.training.calibrate import calibrate_model
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.engine import StepEnd, TrainConfig, train
from napari_octfluid.training.parts import TRAINABLE_PARTS
from napari_octfluid.training.recipe import recipe_subjects
from napari_octfluid.training.replay import load_replay_crops
from napari_octfluid.training.shared_data import load_subjects

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "default_weights.toml"


def pooled_dice(model, subjects, skip=None) -> float:
    """Pooled Dice of ``model`` on the B-scans of ``subjects`` (less those in ``skip``)."""
    pairs = []
    for subject in subjects:
        keep = [z for z in range(len(subject.images)) if skip is None or z not in skip]
        _, result = run_to_end(predict(subject.images[keep], model, "cpu"))
        pairs.append((result.labels, subject.labels[keep]))
    return float(pooled_counts(pairs).dice)


def shared_subjects() -> dict:
    """Every subject of the shared data the recipe points at, by name."""
    root = RECIPE.parent / tomllib.loads(RECIPE.read_text())["data"]["shared_root"]
    return {s.name: s for s in load_subjects(root.resolve())}


def fluid_bscans(labels) -> np.ndarray:
    """Indices of the B-scans of ``labels[Z, Y, X]`` with any fluid."""
    return np.flatnonzero((labels == FLUID).reshape(len(labels), -1).any(1))


def spread_corrections(with_fluid: np.ndarray, k: int) -> list[int]:
    """The k B-scans a clinician corrects: spread evenly over those with fluid, first and last included."""
    return [int(z) for z in with_fluid[np.linspace(0, len(with_fluid) - 1, k).round().astype(int)]]


def fold_held_out(cv_dir: Path) -> dict[Path, list[str]]:
    """Each cross-validation fold checkpoint in ``cv_dir`` and the subjects it held out (read once)."""
    return {
        path: torch.load(path, map_location="cpu", weights_only=True).get("held_out", [])
        for path in sorted(cv_dir.glob("fold_*/final.pt"))
    }


def fold_weights(folds: dict[Path, list[str]], subject: str) -> tuple[Path, list[str]]:
    """The fold checkpoint that held ``subject`` out, and the fold's other held-out subjects."""
    for path, held_out in folds.items():
        if subject in held_out:
            return path, [name for name in held_out if name != subject]
    raise SystemExit(f"no cross-validation fold held out {subject}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="base weights (trained without the subjects)")
    parser.add_argument("--cv-dir", type=Path, help="octfluid crossval --out folder: each subject's fold is its base")
    parser.add_argument("--subjects", nargs="+", default=["umn_13"])
    parser.add_argument(
        "--others",
        nargs="+",
        help="unseen subjects for forgetting (default: the other subjects the base weights held out)",
    )
    parser.add_argument("--k", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of fine-tuning per run")
    parser.add_argument(
        "--steps",
        type=int,
        help="a fixed number of steps instead of --budget (the Fine-tune "
        "widget's default is 5 epochs x 20 steps = 100)",
    )
    parser.add_argument("--no-replay", action="store_true")
    parser.add_argument(
        "--shipped-replay",
        action="store_true",
        help="replay the crops shipped beside the weights (as the widget does) instead of every "
        "B-scan the base weights were trained on; crops of held-out subjects are left out",
    )
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--loss", default="composite")
    parser.add_argument("--train-batchnorm", action="store_true", help="let BatchNorm statistics change")
    parser.add_argument(
        "--trainable",
        choices=list(TRAINABLE_PARTS),
        default="all",
        help="the parts of the network that learn (decoder: encoder and transformer kept)",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="after fine-tuning, choose the fluid threshold on the corrected B-scans (with "
        "--shipped-replay: on them and the replayed crops)",
    )
    parser.add_argument(
        "--choose",
        choices=["spread", "uncertain"],
        default="spread",
        help="which B-scans the simulated clinician corrects: spread evenly over those with fluid, "
        "or the k the base model is least sure of (the Review panel's 'next unsure' order)",
    )
    parser.add_argument(
        "--change-kept",
        nargs="+",
        type=float,
        default=[1.0],
        help="test the weights these shares of the way from the base to the fine-tuned ones "
        "(WiSE-FT: TrainConfig.change_kept, the widget's 'Change kept'); 1 is the fine-tuned "
        "model",
    )
    parser.add_argument("--seed", type=int, default=0, help="the fine-tune's random crops and augmentation")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if (args.weights is None) == (args.cv_dir is None):
        parser.error("give one of --weights and --cv-dir")
    torch.set_num_threads(args.threads)
    recipe_data = tomllib.loads(RECIPE.read_text())["data"]
    every = shared_subjects()
    length = f"{args.steps} steps" if args.steps else f"budget {args.budget:.0f} s"
    replay = "off" if args.no_replay else "shipped crops" if args.shipped_replay else "training B-scans"
    print(
        f"{length}; replay {replay}; lr {args.lr:g}; loss {args.loss}; "
        f"BatchNorm {'trained' if args.train_batchnorm else 'frozen'}; trains {args.trainable}; corrects the "
        f"{'most uncertain' if args.choose == 'uncertain' else 'evenly spread'} B-scans; threshold "
        f"{'recalibrated on the corrections' if args.recalibrate else 'kept'}; seed {args.seed}; "
        f"{args.threads} threads"
    )
    changes: dict[str, list[tuple[float, float]]] = {}
    folds = fold_held_out(args.cv_dir) if args.cv_dir is not None else {}
    for name in args.subjects:
        if args.cv_dir is not None:
            weights, fold_others = fold_weights(folds, name)
        else:
            # the shipped weights held out the recipe's validation subjects
            weights, fold_others = Path(args.weights), [n for n in recipe_data["validation"] if n != name]
        for setting, change in finetune_subject(
            every[name], [every[n] for n in (args.others or fold_others)], weights, every, args
        ).items():
            changes.setdefault(setting, []).append(change)
    for setting, pairs in changes.items():
        subject_gain, others_change = np.array(pairs).T
        print(
            f"{setting}, {len(pairs)} subjects: mean change on the subject's other B-scans "
            f"{subject_gain.mean():+.4f} (min {subject_gain.min():+.4f}, max {subject_gain.max():+.4f}); on other "
            f"subjects {others_change.mean():+.4f} (min {others_change.min():+.4f})"
        )


def finetune_subject(subject, others, weights: Path, every: dict, args) -> dict[str, tuple[float, float]]:
    base, payload = load_model(weights)
    # replay what the base weights were trained on: a cross-validation fold's checkpoint (octfluid crossval) names
    # the subjects it held out, the shipped weights were trained on the recipe's training subjects
    if "held_out" in payload:
        trained_on = [s for s in every.values() if s.name not in payload["held_out"]]
    else:
        trained_on = recipe_subjects(RECIPE, "train")
    if subject.name in {s.name for s in trained_on}:
        raise SystemExit(f"{weights} was trained on {subject.name}: choose a subject it never saw")
    if args.no_replay:
        replay = None
    elif args.shipped_replay:
        replay = load_replay_crops(exclude=tuple(n for n in every if n not in {s.name for s in trained_on}))
    else:
        replay = BscanSet.from_subjects(trained_on)
    uncertain_first = None
    if args.choose == "uncertain":
        _, base_result = run_to_end(predict(subject.images, base, "cpu"))
        uncertain_first = np.argsort(-mean_entropy_bits(base_result.fluid_probability), kind="stable")
    with_fluid = fluid_bscans(subject.labels)
    if len(with_fluid) <= max(args.k):  # and still test on fluid in its other B-scans
        print(
            f"{subject.name}: {len(with_fluid)} B-scans with fluid, too few to correct {max(args.k)} and test on "
            "the others; skipped"
        )
        return {}
    print(
        f"base weights {weights}; subject {subject.name} ({len(subject.images)} B-scans, {len(with_fluid)} with "
        f"fluid); others {', '.join(s.name for s in others)}"
    )
    others_before = pooled_dice(base, others)
    changes = {}
    for k in args.k:
        corrected = (
            sorted(int(z) for z in uncertain_first[:k])
            if uncertain_first is not None
            else spread_corrections(with_fluid, k)
        )
        if not np.isin(with_fluid, corrected, invert=True).any():
            print(f"k={k}: no fluid left outside the corrected B-scans {corrected}; skipped")
            continue
        before = pooled_dice(base, [subject], skip=corrected)
        data = BscanSet.from_subjects([subject], [corrected])
        length = (
            dict(epochs=1, steps_per_epoch=args.steps)
            if args.steps
            else dict(epochs=1000, steps_per_epoch=10, time_budget_s=args.budget)
        )
        config = TrainConfig(
            **length,
            batch_size=4,
            crop=(256, 256),
            learning_rate=args.lr,
            device="cpu",
            freeze_batchnorm=not args.train_batchnorm,
            loss=args.loss,
            trainable=args.trainable,
            seed=args.seed,
        )
        start = time.perf_counter()
        events, result = run_to_end(train(base, data, None, config, replay_data=replay))
        steps = sum(isinstance(event, StepEnd) for event in events)
        model = result.model
        if args.recalibrate:
            chosen_on = (
                data
                if not args.shipped_replay
                else BscanSet(data.images + replay.images, data.labels + replay.labels, data.sources + replay.sources)
            )
            calibrate_model(model, chosen_on)
        wall = time.perf_counter() - start
        for kept in args.change_kept:
            # the same as TrainConfig(change_kept=kept), every share from one run
            blended = model if kept == 1 else blend_weights(starting_state(base), model, kept)
            after = pooled_dice(blended, [subject], skip=corrected)
            others_after = pooled_dice(blended, others)
            blend = "" if kept == 1 else f" kept={kept:g}"
            print(
                f"k={k}{blend} corrected B-scans {corrected}: Dice on the other B-scans {before:.4f} -> "
                f"{after:.4f} ({after - before:+.4f}); other subjects {others_before:.4f} -> {others_after:.4f} "
                f"({others_after - others_before:+.4f}); fine-tuning {wall:.0f} s ({steps} steps); threshold "
                f"{base.decision_threshold:.2f} -> {model.decision_threshold:.2f}",
                flush=True,
            )
            changes[f"k={k}{blend}"] = (after - before, others_after - others_before)
    return changes


if __name__ == "__main__":
    main()
