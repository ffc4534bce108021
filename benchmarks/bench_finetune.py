"""Does correcting help? A simulated clinician on the shared data.

    python benchmarks/bench_finetune.py --weights runs/default/best.pt --subject umn_13 --others duke_05 umn_12

Starting from weights trained without ``--subject``, "correct" k of its B-scans (the expert mask stands in for
the correction), fine-tune on the CPU for a fixed wall-time budget (with replay of the recipe's training data),
and report Dice on the subject's other B-scans before and after, Dice on ``--others`` (forgetting), and wall time.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import numpy as np
import torch

from napari_octfluid.evaluation import counts_against
from napari_octfluid.events import drive
from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.model import load_model
from napari_octfluid.training.calibrate import calibrate_threshold
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.engine import TrainConfig, train
from napari_octfluid.training.recipe import recipe_subjects
from napari_octfluid.training.shared_data import load_subjects

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "default_weights.toml"


def pooled_dice(model, subjects, skip=None) -> float:
    parts = []
    for subject in subjects:
        keep = [z for z in range(len(subject.images)) if skip is None or z not in skip]
        _, result = run_to_end(predict(subject.images[keep], model, "cpu"))
        parts.append(counts_against(result.labels, subject.labels[keep]).pooled())
    tp, fp, fn = (sum(float(getattr(c, n)) for c in parts) for n in ("tp", "fp", "fn"))
    return 2 * tp / (2 * tp + fp + fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--subject", default="umn_13")
    parser.add_argument("--others", nargs="+", default=["duke_05", "umn_12"])
    parser.add_argument("--k", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of fine-tuning per run")
    parser.add_argument("--no-replay", action="store_true")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--loss", default="composite")
    parser.add_argument("--train-batchnorm", action="store_true", help="let BatchNorm statistics change")
    parser.add_argument("--recalibrate", action="store_true",
                        help="after fine-tuning, choose the fluid threshold on the corrected B-scans")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = (RECIPE.parent / tomllib.loads(RECIPE.read_text())["data"]["shared_root"]).resolve()
    [subject] = load_subjects(root, [args.subject])
    others = load_subjects(root, args.others)
    base, payload = load_model(args.weights)
    # replay what the base weights were trained on: a cross-validation fold's checkpoint (octfluid crossval) names
    # the subjects it held out, the shipped weights were trained on the recipe's training subjects
    if "held_out" in payload:
        trained_on = [s for s in load_subjects(root) if s.name not in payload["held_out"]]
    else:
        trained_on = recipe_subjects(RECIPE, "train")
    if args.subject in {s.name for s in trained_on}:
        raise SystemExit(f"{args.weights} was trained on {args.subject}: choose a subject it never saw")
    replay = None if args.no_replay else BscanSet.from_volumes([(s.images, s.labels, s.name) for s in trained_on])
    with_fluid = np.flatnonzero((subject.labels == 1).reshape(len(subject.labels), -1).any(1))
    print(f"base weights {args.weights}; subject {args.subject} ({len(subject.images)} B-scans, "
          f"{len(with_fluid)} with fluid); others {', '.join(args.others)}; budget {args.budget:.0f} s; "
          f"replay {'off' if replay is None else 'on'}; lr {args.lr:g}; loss {args.loss}; "
          f"BatchNorm {'trained' if args.train_batchnorm else 'frozen'}; threshold "
          f"{'recalibrated on the corrections' if args.recalibrate else 'kept'}; {args.threads} threads")
    others_before = pooled_dice(base, others)
    for k in args.k:
        corrected = [int(z) for z in with_fluid[np.linspace(0, len(with_fluid) - 1, k).round().astype(int)]]
        before = pooled_dice(base, [subject], skip=corrected)
        data = BscanSet.from_volumes([(subject.images, subject.labels, subject.name)], [corrected])
        config = TrainConfig(epochs=1000, steps_per_epoch=10, batch_size=4, crop=(256, 256),
                             learning_rate=args.lr, device="cpu", time_budget_s=args.budget,
                             freeze_batchnorm=not args.train_batchnorm, loss=args.loss)
        start = time.perf_counter()
        result = drive(train(base, data, None, config, replay_data=replay))
        model = result.model
        if args.recalibrate:
            model.decision_threshold, _ = calibrate_threshold(model, data)
        wall = time.perf_counter() - start
        after = pooled_dice(model, [subject], skip=corrected)
        others_after = pooled_dice(model, others)
        print(f"k={k} corrected B-scans {corrected}: Dice on the other B-scans {before:.4f} -> {after:.4f} "
              f"({after - before:+.4f}); other subjects {others_before:.4f} -> {others_after:.4f} "
              f"({others_after - others_before:+.4f}); fine-tuning {wall:.0f} s; threshold "
              f"{base.decision_threshold:.2f} -> {model.decision_threshold:.2f}")


if __name__ == "__main__":
    main()
