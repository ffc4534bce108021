"""Does correcting pay off? A simulated clinician corrects scans with octfluid's click tools, without and with
fine-tuning after the first k corrected B-scans, and counts the actions.

    python benchmarks/bench_correction.py --images A.tif --labels A_mask.tif [--weights W] [--shift NAME] [--k 3] \\
        [--settings preset adaptive whole] [--others B.tif --others-labels B_mask.tif] [--bscans 12] [--threads 2]

For each scan (images and expert labels given as files; ``--shift`` makes them look like another device first,
``napari_octfluid.shifts``), the model predicts every B-scan; a robot (``benchmarks/correction_robot.py``) corrects
k B-scans spread evenly over the scan, with the click tools, until each reaches Dice 0.9 against the expert or a cap
of actions. Then, for the other B-scans:

- **none**: the robot corrects the starting model's masks;
- **each fine-tuning setting**: the model is fine-tuned on the k corrected B-scans (the robot's corrections, not the
  expert's masks: that is what a clinician's labels are) with the product's preset
  (``training.finetune.finetune_config``, replay of the shipped crops), the other B-scans are predicted again, and
  the robot corrects those masks.

It prints, per scan and setting: pooled Dice of the other B-scans before any correction, the mean actions per B-scan
to reach Dice 0.9 (NoC@90; a B-scan that never reaches it counts the cap), the share that reached it, the error
pixels the masks left to fix and those left after the robot, and the fine-tuning time; with ``--others``, the pooled
Dice of other patients' scans before and after (what the adapted model forgets). A scan is predicted as a file
without its spacing would be (the shared TIFFs record none), unless ``--tell-spacing`` hands prediction the axial
spacing the shift implies. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from bench_finetune import pooled_dice  # beside this script: Dice of other patients, as there
from correction_robot import MAX_ACTIONS, correct_volume

from napari_octfluid.cli._common import apply_threads, load_subjects
from napari_octfluid.evaluation import SHIFT_SEED, axial_spacing_for
from napari_octfluid.events import run_to_end
from napari_octfluid.inference import predict
from napari_octfluid.labels import IGNORE, counts_against
from napari_octfluid.model import load_model
from napari_octfluid.priority import mirrored_disagreement
from napari_octfluid.shifts import SHIFTS, apply_shift
from napari_octfluid.training.finetune import (
    WHOLE_NETWORK,
    BscanChoice,
    finetune_config,
    load_and_finetune,
    prepare_and_train,
    replay_by_default,
    with_fitted_axial_spacing,
)
from napari_octfluid.weights import default_weights_path

# fine-tuning settings the benchmark compares: overrides of the product's preset (TrainConfig fields);
# "adaptive" is the product's job (training.finetune.load_and_finetune: the axial pixel size fitted where the file
# gives none, and the rule, adaptation_for), decided on each scan's corrections
SETTINGS = {
    "preset": {},
    "decoder_full": dict(change_kept=1.0),
    "whole": dict(trainable="all", change_kept=1.0),
    "whole_lr1e-3": dict(trainable="all", change_kept=1.0, learning_rate=1e-3),
    "whole_300": dict(trainable="all", change_kept=1.0, epochs=15),  # 300 steps
    "whole_300_lr3e-4": dict(trainable="all", change_kept=1.0, epochs=15, learning_rate=3e-4),
    # the adaptive rule's whole-network setting, pulled back towards the starting weights at every step
    # (training/anchor.py: decoupled L2-SP); at the peak rate 3e-4, 30 moves each weight 1 % of the way back per step
    **{f"whole_pull{s:g}": dict(WHOLE_NETWORK, start_pull=float(s)) for s in (10, 30, 100, 300, 1000)},
}


def forgetting(model, others, before: float) -> float:
    """Change of pooled Dice on other patients' scans of the original device: what the weights forgot. A model with
    an axial pixel size fitted to another device's corrections would take those files (which give no spacing) to be
    at its size; a scan of the original device whose file gives its spacing is predicted at its own, as here."""
    fitted = model.fitted_axial_spacing_mm
    model.fitted_axial_spacing_mm = None
    try:
        return pooled_dice(model, others) - before
    finally:
        model.fitted_axial_spacing_mm = fitted


def spread(count: int, k: int) -> list[int]:
    """k B-scans spread evenly over ``count``, first and last included."""
    return sorted({int(z) for z in np.linspace(0, count - 1, k).round()})


def predicted(model, images, spacing):
    _, result = run_to_end(predict(images, model, "cpu", axial_spacing_mm=spacing))
    return result.labels, result.fluid_probability


def queued(model, images, labels, k: int, spacing) -> list[int]:
    """The first k B-scans of the review queue: the largest disagreement between the mask and the mirrored pass's
    (``priority.mirrored_disagreement``, as the Review tab ranks them), earliest first among equals."""
    _, (doubt, _) = run_to_end(mirrored_disagreement(images, model, labels, "cpu", axial_spacing_mm=spacing))
    return sorted(int(z) for z in np.argsort(-doubt, kind="stable")[:k])


def summarise(records) -> dict:
    actions = np.array([len(r.actions) if r.reached else max(len(r.actions), MAX_ACTIONS) for r in records])
    return dict(
        noc90=float(actions.mean()) if len(actions) else float("nan"),
        reached=float(np.mean([r.reached for r in records])) if records else float("nan"),
        error_before=int(sum(r.error_pixels_before for r in records)),
        error_after=int(sum(r.error_pixels_after for r in records)),
        clicks=int(sum(a in ("remove", "add", "threshold") for r in records for a in r.actions)),
        strokes=int(sum(a == "brush" for r in records for a in r.actions)),
    )


@dataclass(frozen=True)
class Scan:
    """One scan of the benchmark: its ``expert`` labels, the ``rest`` of its B-scans (not corrected before
    fine-tuning) and how far the starting model ``agreement`` with the first corrections went."""

    name: str
    expert: np.ndarray
    rest: list[int]
    agreement: float

    def report(self, shown: str, labels, probability, threshold: float, tune_s: float, others_change: float) -> dict:
        """The robot run on the rest of the scan from ``labels``; prints and returns the row."""
        _, records = correct_volume(labels, probability, self.expert, threshold, self.rest)
        dice = float(counts_against(labels[self.rest], self.expert[self.rest]).pooled().dice)
        row = dict(summarise(records), dice=dice, tune_s=tune_s, others=others_change)
        print(
            f"{self.name:<22} {shown:<18} {self.agreement:>6.3f} {dice:>6.3f} {row['noc90']:>7.2f} "
            f"{row['reached']:>7.0%} {row['error_before']:>8} {row['error_after']:>8} {row['clicks']:>6} "
            f"{row['strokes']:>7} {tune_s:>6.0f} {others_change:>+7.3f}",
            flush=True,
        )
        return row


def thinned(images, labels, count):
    annotated = [z for z in range(len(labels)) if (labels[z] != IGNORE).any()]
    keep = annotated if not count or count >= len(annotated) else [annotated[i] for i in spread(len(annotated), count)]
    return images[keep], labels[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--shift", default="none", help=f"'none' or one of: {', '.join(SHIFTS)}")
    parser.add_argument("--tell-spacing", action="store_true", help="give prediction the spacing the shift implies")
    parser.add_argument("--k", type=int, default=3, help="B-scans corrected before fine-tuning")
    parser.add_argument(
        "--choose",
        choices=("spread", "queue"),
        default="spread",
        help="which k B-scans the robot corrects first: spread evenly through the scan (default), or the first k of "
        "the review queue (the mirrored pass's disagreement, napari_octfluid.priority: where a clinician who follows "
        "octfluid's queue starts)",
    )
    parser.add_argument(
        "--first-cap",
        type=int,
        default=MAX_ACTIONS,
        help="actions allowed on each of the k B-scans corrected to teach the model (a clinician correcting to "
        f"train may go further than on the rest; default {MAX_ACTIONS})",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["preset", "adaptive"],
        help=f"some of: {', '.join([*SETTINGS, 'adaptive', 'fit_only'])}; adaptive_pullN: adaptive with the pull N "
        "set; fit+NAME: the fit, then setting NAME whatever the rule says",
    )
    parser.add_argument("--others", nargs="*", default=[], help="other patients' scans, for forgetting")
    parser.add_argument("--others-labels", nargs="*", default=[])
    parser.add_argument("--bscans", type=int, help="evenly spaced annotated B-scans kept per scan (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    apply_threads(args.threads)

    weights = args.weights or default_weights_path()
    base, _ = load_model(weights)
    others = load_subjects(args.others, args.others_labels) if args.others else []
    others_before = pooled_dice(base, others) if others else float("nan")
    replay = replay_by_default()
    print(
        f"weights {weights}; shift {args.shift}{' (spacing told)' if args.tell_spacing else ''}; k {args.k}; "
        f"replay {'on' if replay else 'off'}; target Dice 0.9, cap {MAX_ACTIONS} actions"
    )
    header = (
        f"{'scan':<22} {'setting':<18} {'agree':>6} {'Dice':>6} {'NoC@90':>7} {'reached':>7} {'err px':>8} "
        f"{'left px':>8} {'clicks':>6} {'strokes':>7} {'tune s':>6} {'others':>7}"
    )
    print(header)
    totals: dict[str, list[dict]] = {}
    for index, subject in enumerate(load_subjects(args.images, args.labels)):
        images, expert = thinned(subject.images, subject.labels, args.bscans)
        if args.shift != "none":
            images, expert = apply_shift(args.shift, images, expert, seed=SHIFT_SEED, index=index)
        spacing = axial_spacing_for(subject, images.shape, base) if args.tell_spacing else None
        labels, probability = predicted(base, images, spacing)
        if args.choose == "spread":
            corrected_on = spread(len(images), args.k)
        else:
            corrected_on = queued(base, images, labels, args.k, spacing)
        rest = [z for z in range(len(images)) if z not in corrected_on]
        corrections, first = correct_volume(
            labels, probability, expert, base.decision_threshold, corrected_on, max_actions=args.first_cap
        )
        # how well the starting model agreed with the corrections: what the adaptive rule decides on
        agreement = float(counts_against(labels[corrected_on], corrections[corrected_on]).pooled().dice)
        taught = float(counts_against(corrections[corrected_on], expert[corrected_on]).pooled().dice)
        print(
            f"{subject.name:<22} corrected B-scans {corrected_on}: {np.mean([len(r.actions) for r in first]):.1f} "
            f"actions each, Dice {taught:.3f} against the expert"
        )

        scan = Scan(subject.name, expert, rest, agreement)
        totals.setdefault("none", []).append(
            scan.report("none", labels, probability, base.decision_threshold, 0.0, 0.0 if others else float("nan"))
        )
        volume = (images, corrections, subject.name)
        for setting in args.settings:
            start = time.perf_counter()
            if setting.startswith(("adaptive", "fit+")):  # the product's job, as the Fine-tune widget runs it
                if setting.startswith("fit+"):  # the fit, then the named setting as if the user had set all of it
                    given = SETTINGS[setting[4:]]
                    explicit = {*given, *WHOLE_NETWORK}
                else:  # the fit and the rule; adaptive_pullN: Hold near start set to N
                    given = {"start_pull": float(setting.split("_pull")[1])} if "_pull" in setting else {}
                    explicit = set(given)
                config = finetune_config(images.shape, device="cpu", seed=args.seed, **given)
                choice = BscanChoice(explicit=corrected_on)
                job = load_and_finetune(weights, volume, choice, config, replay, True, spacing, explicit=explicit)
                _, run = run_to_end(job)
                result_model, whole = run.result.model, run.adapted
            elif setting == "fit_only":  # the axial pixel size fitted to the corrections, no training
                fitting = with_fitted_axial_spacing(base, [(images, corrections, corrected_on)])
                _, (result_model, _) = run_to_end(fitting)
                whole = False
            else:
                config = finetune_config(images.shape, device="cpu", seed=args.seed, **SETTINGS[setting])
                job = prepare_and_train(base, volume, corrected_on, [], config, replay=replay, axial_spacing_mm=spacing)
                result_model = run_to_end(job)[1].model
            tune_s = time.perf_counter() - start
            tuned_labels, tuned_probability = predicted(result_model, images, spacing)
            forgot = forgetting(result_model, others, others_before) if others else float("nan")
            shown = setting
            if setting.startswith(("adaptive", "fit")):
                fitted = result_model.fitted_axial_spacing_mm
                size = f"{fitted * 1000:.1f}um" if fitted else "rows"
                if setting == "fit_only":
                    shown = f"fit:{size}"
                elif setting.startswith("fit+"):
                    shown = f"fit:{size}+{setting[4:]}"
                else:
                    shown = f"{setting[:5]}{setting[8:]}:{size}:" + ("whole" if whole else "preset")
            row = scan.report(shown, tuned_labels, tuned_probability, result_model.decision_threshold, tune_s, forgot)
            totals.setdefault(setting, []).append(row)
    print("\nmean over scans")
    print(f"{'setting':<14} {'Dice':>6} {'NoC@90':>7} {'reached':>7} {'err px':>8} {'left px':>8} {'others':>7}")
    for setting, rows in totals.items():
        mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
        print(
            f"{setting:<14} {mean['dice']:>6.3f} {mean['noc90']:>7.2f} {mean['reached']:>7.0%} "
            f"{mean['error_before']:>8.0f} {mean['error_after']:>8.0f} {mean['others']:>+7.3f}"
        )


if __name__ == "__main__":
    main()
