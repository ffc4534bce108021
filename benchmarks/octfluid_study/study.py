"""The comparison study of losses and networks (after Darooei et al. 2023, Tables 1, 3 and 4, and the dual
focal loss of Hossain, Paplinski & Betts 2019, Eq. 7): k-fold cross-validation by subject with the same step
budget, data, crops and seed for every arm.

Each arm is a network and a loss. One run trains an arm on the folds' training subjects, records a learning
curve (Dice on a few held-out B-scans after every epoch, for plots only: nothing is chosen on it), calibrates a
decision threshold on training B-scans, and counts true/false positives and false negatives per held-out B-scan,
on clean images and with Gaussian noise added, at the argmax (threshold 0.5: what the loss itself optimises)
and at the calibrated threshold. Runs are saved as JSON one by one, so an interrupted study resumes and more
seeds or folds can be added later; :func:`summarise` pools them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generator

import numpy as np
import torch

from napari_octfluid.devices import resolve_device
from napari_octfluid.evaluation import add_noise
from napari_octfluid.inference import predict, run_to_end
from napari_octfluid.labels import counts_against
from napari_octfluid.metrics import Agreement, Confusion
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, count_parameters
from napari_octfluid.subjects import Subject
from napari_octfluid.training.calibrate import calibrate_model
from napari_octfluid.training.crossval import subject_folds
from napari_octfluid.training.data import BscanSet
from napari_octfluid.training.engine import EpochEnd, StepEnd, TrainConfig, train

from .baselines import BASELINES

# the losses of Darooei et al. 2023 (Tables 3, 4); of Hossain, Paplinski & Betts 2019 (CE, WCE, focal, dual
# focal: Eq. 3, 4, 6, 7 and 21); generalized Dice (Sudre et al. 2017) and exponential logarithmic (Wong et al. 2018)
LOSS_ARMS = (
    "composite",
    "dice",
    "focal_tversky",
    "tversky",
    "wbce",
    "ce",
    "focal",
    "dual_focal",
    "adaptive_dual_focal",
    "generalized_dice",
    "exp_log",
)
NETWORK_ARMS = ("basic_unet", "attention_unet", "swin_unetr")
# the networks of the smoke run: the same kinds, a few thousand parameters
TINY_BASELINES = {
    "basic_unet": {"features": (4, 4, 8, 8, 16, 4)},
    "attention_unet": {"channels": (4, 8, 8, 16, 16)},
    "swin_unetr": {"feature_size": 12},
}


@dataclass(frozen=True)
class Arm:
    name: str
    network: str  # "transunet" or a key of BASELINES
    loss: str  # a loss spec of the registry


ARMS: dict[str, Arm] = {
    **{loss: Arm(loss, "transunet", loss) for loss in LOSS_ARMS},
    **{net: Arm(net, net, "composite") for net in NETWORK_ARMS},
}


@dataclass
class StudySettings:
    """The budget every arm gets, and how it is evaluated."""

    steps: int = 400
    steps_per_epoch: int = 50  # one learning-curve point per epoch
    batch_size: int = 8
    crop: tuple[int, int] = (128, 128)
    learning_rate: float = 2e-3
    noise_sigma: float = 20.0  # grey levels of the 8-bit images
    eval_bscans_per_subject: int | None = 11  # evenly spaced; None: all of them
    calibration_bscans: int = 40  # training B-scans the threshold is chosen on
    curve_bscans: int = 6  # held-out B-scans with fluid, for the learning curves
    model_config: str = "paper"  # TransUNet configuration; "tiny" with tiny baselines for smoke runs
    tiny_baselines: bool = False
    device: str = "auto"

    def train_config(self, loss: str, seed: int) -> TrainConfig:
        return TrainConfig(
            loss=loss,
            epochs=max(1, math.ceil(self.steps / self.steps_per_epoch)),
            steps_per_epoch=min(self.steps, self.steps_per_epoch),
            batch_size=self.batch_size,
            crop=tuple(self.crop),
            learning_rate=self.learning_rate,
            seed=seed,
            device=self.device,
        )


@dataclass(frozen=True)
class RunStarted:
    arm: str
    fold: int
    seed: int
    index: int  # 1-based position of this run in the study
    total: int


@dataclass
class RunResult:
    arm: str
    network: str
    loss: str
    fold: int
    seed: int
    held_out: list[str]
    parameters: int
    train_seconds: float
    threshold: float  # calibrated on training B-scans
    curve: list[tuple[int, float]]  # (step, Dice on the curve B-scans)
    # per held-out subject: {"subject", "dataset", "bscans", "counts": {condition: {decision: {tp, fp, fn}}}}
    subjects: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        values = json.loads(path.read_text())
        values["curve"] = [tuple(point) for point in values["curve"]]
        return cls(**values)


def build_network(arm: Arm, settings: StudySettings) -> torch.nn.Module:
    if arm.network == "transunet":
        return TransUNet(MODEL_CONFIGS[settings.model_config])
    return BASELINES[arm.network](**(TINY_BASELINES[arm.network] if settings.tiny_baselines else {}))


def _evenly(count: int, wanted: int | None) -> list[int]:
    if wanted is None or wanted >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, wanted)})


def _curve_set(held_out: list[Subject], wanted: int) -> BscanSet:
    """``wanted`` held-out B-scans with fluid, spread over the subjects."""
    candidates = [(s, z) for s in held_out for z in range(len(s.labels)) if (s.labels[z] == 1).any()]
    chosen = [candidates[i] for i in _evenly(len(candidates), wanted)]
    return BscanSet.from_subjects(held_out, [[z for s, z in chosen if s is subject] for subject in held_out])


def _held_out_counts(
    model: torch.nn.Module, subject: Subject, index: int, threshold: float, settings: StudySettings
) -> dict:
    bscans = _evenly(len(subject.images), settings.eval_bscans_per_subject)
    images, labels = subject.images[bscans], subject.labels[bscans]
    counts = {}
    for condition, sigma in (("clean", 0.0), ("noisy", settings.noise_sigma)):
        _, result = run_to_end(predict(add_noise(images, sigma, seed=index), model, settings.device))
        counts[condition] = {}
        for decision, cut in (("argmax", 0.5), ("calibrated", threshold)):
            c = counts_against((result.fluid_probability > cut).astype(np.uint8), labels)
            counts[condition][decision] = {"tp": c.tp.tolist(), "fp": c.fp.tolist(), "fn": c.fn.tolist()}
    return {"subject": subject.name, "dataset": subject.dataset, "bscans": bscans, "counts": counts}


def run_arm(
    arm: Arm, subjects: list[Subject], held_out: list[str], fold: int, seed: int, settings: StudySettings
) -> Generator[StepEnd | EpochEnd, None, RunResult]:
    """Train ``arm`` on the subjects not in ``held_out`` and count its errors on those held out."""
    training = [s for s in subjects if s.name not in held_out]
    testing = [s for s in subjects if s.name in held_out]
    train_set = BscanSet.from_subjects(training)
    network = build_network(arm, settings)
    # every arm of a (fold, seed) draws the same crops in the same order
    config = settings.train_config(arm.loss, seed=1000 * seed + fold)
    started = time.perf_counter()
    result = yield from train(network, train_set, _curve_set(testing, settings.curve_bscans), config)
    seconds = time.perf_counter() - started
    model = result.model
    chosen = _evenly(len(train_set), settings.calibration_bscans)
    calibration = BscanSet(
        [train_set.images[i] for i in chosen],
        [train_set.labels[i] for i in chosen],
        [],
        outside=[train_set.outside[i] for i in chosen] if train_set.outside else None,
    )
    threshold, _ = calibrate_model(model, calibration, device=resolve_device(settings.device))
    position = {s.name: index for index, s in enumerate(subjects)}  # each subject's noise seed
    per_subject = [_held_out_counts(model, s, position[s.name], threshold, settings) for s in testing]
    curve = [
        (e.epoch * config.steps_per_epoch, float("nan") if e.val_dice is None else float(e.val_dice))
        for e in result.history
    ]
    return RunResult(
        arm.name,
        arm.network,
        arm.loss,
        fold,
        seed,
        list(held_out),
        count_parameters(model),
        seconds,
        float(threshold),
        curve,
        per_subject,
        asdict(settings),
    )


def run_path(out_dir: Path, arm: str, fold: int, seed: int) -> Path:
    return Path(out_dir) / arm / f"fold{fold}_seed{seed}.json"


def run_study(
    subjects: list[Subject], arms: list[str], folds: int, seeds: list[int], settings: StudySettings, out_dir: str | Path
) -> Generator[RunStarted | StepEnd | EpochEnd | RunResult, None, list[RunResult]]:
    """Every arm on every fold and seed, folds outermost (an interrupted study has whole folds of every arm).
    A run already saved in ``out_dir`` is loaded, not repeated."""
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arms {unknown}; choose from {sorted(ARMS)}")
    out_dir = Path(out_dir)
    fold_subjects = subject_folds([s.name for s in subjects], folds)
    plan = [(fold, seed, arm) for fold in range(1, folds + 1) for seed in seeds for arm in arms]
    results = []
    for index, (fold, seed, arm) in enumerate(plan, start=1):
        path = run_path(out_dir, arm, fold, seed)
        if path.exists():
            results.append(RunResult.load(path))
            continue
        yield RunStarted(arm, fold, seed, index, len(plan))
        result = yield from run_arm(ARMS[arm], subjects, fold_subjects[fold - 1], fold, seed, settings)
        result.save(path)
        results.append(result)
        yield result
    return results


def _agreement(runs: list[RunResult], condition: str, decision: str, dataset: str | None = None) -> Agreement:
    parts = [
        s["counts"][condition][decision] for r in runs for s in r.subjects if dataset is None or s["dataset"] == dataset
    ]
    return Agreement.from_confusion(
        Confusion(*(np.array([v for p in parts for v in p[key]], dtype=np.int64) for key in ("tp", "fp", "fn")))
    )


@dataclass(frozen=True)
class StudyRow:
    arm: str
    network: str
    loss: str
    condition: str  # "clean" or "noisy"
    decision: str  # "argmax" or "calibrated"
    pooled_dice: float  # all held-out B-scans of all folds, averaged over seeds
    pooled_jaccard: float
    mean_bscan_dice: float
    false_positive_rate: float
    duke_dice: float
    umn_dice: float
    run_dice_mean: float  # pooled Dice of each (fold, seed) run
    run_dice_sd: float
    runs: int
    seeds: int
    train_minutes: float  # per run, mean
    parameters: int


def summarise(results: list[RunResult]) -> list[StudyRow]:
    """One row per arm, condition and decision rule."""
    rows = []
    for arm in dict.fromkeys(r.arm for r in results):
        runs = [r for r in results if r.arm == arm]
        by_seed = [[r for r in runs if r.seed == seed] for seed in sorted({r.seed for r in runs})]
        for condition in ("clean", "noisy"):
            for decision in ("argmax", "calibrated"):

                def over_seeds(
                    attribute: str, dataset: str | None = None, condition=condition, decision=decision, by_seed=by_seed
                ) -> float:
                    return float(
                        np.mean(
                            [
                                getattr(_agreement(seed_runs, condition, decision, dataset), attribute)
                                for seed_runs in by_seed
                            ]
                        )
                    )

                per_run = [_agreement([r], condition, decision).pooled_dice for r in runs]
                datasets = {s["dataset"] for r in runs for s in r.subjects}
                rows.append(
                    StudyRow(
                        arm,
                        runs[0].network,
                        runs[0].loss,
                        condition,
                        decision,
                        over_seeds("pooled_dice"),
                        over_seeds("pooled_jaccard"),
                        over_seeds("mean_bscan_dice"),
                        over_seeds("false_positive_rate"),
                        over_seeds("pooled_dice", "duke") if "duke" in datasets else float("nan"),
                        over_seeds("pooled_dice", "umn") if "umn" in datasets else float("nan"),
                        float(np.mean(per_run)),
                        float(np.std(per_run, ddof=1)) if len(per_run) > 1 else float("nan"),
                        len(runs),
                        len(by_seed),
                        float(np.mean([r.train_seconds for r in runs])) / 60,
                        runs[0].parameters,
                    )
                )
    return rows


def mean_curves(results: list[RunResult]) -> dict[str, tuple[list[int], list[float]]]:
    """Per arm, the validation Dice at each step, averaged over runs."""
    curves = {}
    for arm in dict.fromkeys(r.arm for r in results):
        points: dict[int, list[float]] = {}
        for r in results:
            if r.arm == arm:
                for step, dice in r.curve:
                    points.setdefault(step, []).append(dice)
        steps = sorted(points)
        curves[arm] = (steps, [float(np.mean(points[s])) for s in steps])
    return curves
