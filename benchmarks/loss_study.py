"""The loss and network study on the shared data (issue 8; after Darooei et al. 2023, Tables 1, 3 and 4, with
the losses of Hossain, Paplinski & Betts 2019 and the class-imbalance losses of Sudre et al. 2017 and Wong et al.
2018).

    python benchmarks/loss_study.py --out runs/study --report docs/loss_study           # the CPU run
    python benchmarks/loss_study.py --out runs/study --report docs/loss_study --report-only
    python benchmarks/loss_study.py --smoke --out /tmp/smoke --report /tmp/smoke        # CI: 2 steps per arm

Runs are saved one by one under ``--out`` and skipped when present, so the study resumes, and ``--seeds 0 1 2``
or ``--steps`` on another ``--out`` extend it. The report (``results.md``, ``results.csv``, ``curves.png``) pools
whatever runs are there. On a GPU, raise ``--steps`` and ``--crop`` and add ``--arms ... swin_unetr``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from napari_octfluid.training.engine import EpochEnd
from napari_octfluid.training.shared_data import Subject, load_subjects

# this script's folder is on sys.path when it runs, so its study package imports without installing anything
from octfluid_study.study import (
    ARMS,
    NETWORK_ARMS,
    RunResult,
    RunStarted,
    StudySettings,
    mean_curves,
    run_study,
    summarise,
)

DEFAULT_ARMS = [arm for arm in ARMS if arm != "swin_unetr"]  # SwinUNETR needs einops and is slow on a CPU
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_subjects() -> list[Subject]:
    """Six small volumes with a bright blob of fluid, for the smoke run (no shared data needed)."""
    rng = np.random.default_rng(0)
    subjects = []
    for name in ["duke_01", "duke_02", "umn_00", "umn_01", "umn_02", "umn_03"]:
        images = rng.integers(0, 80, (4, 48, 80)).astype(np.uint8)
        labels = np.zeros_like(images)
        labels[1:, 20:28, 30:40] = 1
        images[labels == 1] = 200
        subjects.append(Subject(name, images, labels))
    return subjects


def hardware() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    return f"{device}, {platform.platform()}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def write_report(results: list[RunResult], report: Path, command: str) -> list:
    report.mkdir(parents=True, exist_ok=True)
    rows = summarise(results)
    with open(report / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, [f.name for f in fields(rows[0])])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    settings = results[0].settings
    lines = [
        f"# Loss and network study: results ({datetime.date.today()})",
        "",
        f"Command: `{command}`",
        "",
        f"Hardware: {hardware()}",
        "",
        f"Budget per run: {settings['steps']} steps of {settings['batch_size']} crops of "
        f"{settings['crop'][0]} x {settings['crop'][1]}, learning rate {settings['learning_rate']}; "
        f"{len({r.fold for r in results})} folds by subject, seeds {sorted({r.seed for r in results})}; held-out "
        f"B-scans per subject: {settings['eval_bscans_per_subject'] or 'all'}; noise sigma "
        f"{settings['noise_sigma']} grey levels.",
        "",
    ]
    for decision, title in (
        ("argmax", "at the argmax (threshold 0.5)"),
        ("calibrated", "at the threshold calibrated on training B-scans"),
    ):
        lines += [
            f"## Pooled over held-out B-scans, {title}",
            "",
            "| arm | network | loss | clean Dice | noisy Dice | drop | clean Jaccard | mean B-scan Dice | "
            "FP rate | Duke | UMN | per-run Dice (mean +- sd) | runs | train min/run | params |",
            "|" + "---|" * 15,
        ]
        for clean in (r for r in rows if r.condition == "clean" and r.decision == decision):
            noisy = next(r for r in rows if r.arm == clean.arm and r.condition == "noisy" and r.decision == decision)
            lines.append(
                f"| {clean.arm} | {clean.network} | {clean.loss} | **{_fmt(clean.pooled_dice)}** | "
                f"{_fmt(noisy.pooled_dice)} | {_fmt(clean.pooled_dice - noisy.pooled_dice)} | "
                f"{_fmt(clean.pooled_jaccard)} | {_fmt(clean.mean_bscan_dice)} | "
                f"{_fmt(clean.false_positive_rate, 2)} | "
                f"{_fmt(clean.duke_dice)} | {_fmt(clean.umn_dice)} | {_fmt(clean.run_dice_mean)} +- "
                f"{_fmt(clean.run_dice_sd)} | {clean.runs} | {_fmt(clean.train_minutes, 1)} | {clean.parameters:,} |"
            )
        lines.append("")
    (report / "results.md").write_text("\n".join(lines))
    _plot_curves(results, report / "curves.png")
    return rows


def _plot_curves(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for arm, (steps, dice) in mean_curves(results).items():
        if arm == "composite":  # the TransUNet with the paper's loss belongs to both comparisons
            for axis in axes:
                axis.plot(steps, dice, marker="o", markersize=3, label=arm, color="black", linewidth=2)
        else:
            axes[1 if arm in NETWORK_ARMS else 0].plot(steps, dice, marker="o", markersize=3, label=arm)
    for axis, title in zip(axes, ("Losses (TransUNet)", "Networks (composite loss)")):
        axis.set_title(title)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, ncol=2)
    axes[0].set_ylabel("Dice on held-out B-scans (mean over runs)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=sorted(ARMS))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, nargs=2, default=[128, 128])
    parser.add_argument("--noise-sigma", type=float, default=20.0)
    parser.add_argument("--eval-bscans", type=int, default=11, help="held-out B-scans per subject (0: all)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs (resumes from it)")
    parser.add_argument("--report", type=Path, required=True, help="folder of results.md/.csv and curves.png")
    parser.add_argument("--report-only", action="store_true", help="pool the saved runs without training")
    parser.add_argument(
        "--smoke", action="store_true", help="two steps per arm on tiny networks and synthetic volumes (CI)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        subjects = synthetic_subjects()
        folds = 2
        settings = StudySettings(
            steps=2,
            steps_per_epoch=1,
            batch_size=2,
            crop=(32, 32),
            calibration_bscans=4,
            curve_bscans=2,
            model_config="tiny",
            tiny_baselines=True,
            eval_bscans_per_subject=3,
            noise_sigma=args.noise_sigma,
            device=args.device,
        )
    else:
        if not args.data.is_dir():
            print(f"error: no shared data at {args.data}; pass --data", file=sys.stderr)
            return 2
        subjects = load_subjects(args.data)
        folds = args.folds
        settings = StudySettings(
            steps=args.steps,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            crop=tuple(args.crop),
            noise_sigma=args.noise_sigma,
            eval_bscans_per_subject=args.eval_bscans or None,
            device=args.device,
        )
    study = run_study(subjects, [] if args.report_only else args.arms, folds, args.seeds, settings, args.out)
    for event in study if not args.report_only else ():
        if isinstance(event, RunStarted):
            print(f"[{event.index}/{event.total}] {event.arm} fold {event.fold} seed {event.seed}", flush=True)
        elif isinstance(event, EpochEnd):
            print(
                f"    epoch {event.epoch}/{event.epochs} loss {event.train_loss:.3f} held-out Dice "
                f"{event.val_dice if event.val_dice is not None else float('nan'):.3f} ({event.elapsed_s:.0f} s)",
                flush=True,
            )
        elif isinstance(event, RunResult):
            print(f"    done in {event.train_seconds / 60:.1f} min; threshold {event.threshold}", flush=True)
    results = [RunResult.load(p) for p in sorted(args.out.glob("*/fold*_seed*.json"))]
    if not results:
        print(f"error: no runs under {args.out}", file=sys.stderr)
        return 1
    results.sort(key=lambda r: (list(ARMS).index(r.arm), r.fold, r.seed))
    command = "python benchmarks/loss_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = write_report(results, args.report, command)
    for row in rows:
        if row.decision == "argmax":
            print(
                f"{row.arm:20s} {row.condition:6s} pooled Dice {row.pooled_dice:.3f} "
                f"(runs {row.run_dice_mean:.3f} +- {row.run_dice_sd:.3f}) {row.train_minutes:.1f} min/run"
            )
    print(f"report: {args.report / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
