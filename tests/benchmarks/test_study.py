"""The loss and network study: pooling by hand-computed counts, and the smoke run of every arm (CI's share of
``benchmarks/loss_study.py``)."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from octfluid_study.study import ARMS, RunResult, StudySettings, mean_curves, summarise

ROOT = Path(__file__).resolve().parents[2]


def _run(arm, fold, seed, duke, umn, curve):
    """A saved run whose held-out subjects have the given per-B-scan (tp, fp, fn)."""

    def subject(name, dataset, counts):
        table = {"tp": [c[0] for c in counts], "fp": [c[1] for c in counts], "fn": [c[2] for c in counts]}
        return {
            "subject": name,
            "dataset": dataset,
            "bscans": list(range(len(counts))),
            "counts": {
                condition: {decision: table for decision in ("argmax", "calibrated")}
                for condition in ("clean", "noisy")
            },
        }

    return RunResult(
        arm,
        "transunet",
        arm,
        fold,
        seed,
        ["duke_01", "umn_00"],
        10,
        60.0 * fold,
        0.5,
        curve,
        [subject("duke_01", "duke", duke), subject("umn_00", "umn", umn)],
        {},
    )


def test_summary_pools_every_held_out_bscan_of_every_fold():
    runs = [
        _run("dice", 1, 0, duke=[(8, 2, 0), (0, 0, 0)], umn=[(2, 0, 2)], curve=[(50, 0.2), (100, 0.4)]),
        _run("dice", 2, 0, duke=[(0, 4, 0)], umn=[(10, 0, 0)], curve=[(50, 0.4), (100, 0.6)]),
    ]
    row = next(r for r in summarise(runs) if r.condition == "clean" and r.decision == "argmax")
    tp, fp, fn = 8 + 2 + 10, 2 + 4, 2
    assert row.pooled_dice == pytest.approx(2 * tp / (2 * tp + fp + fn))  # 40 / 48
    assert row.pooled_jaccard == pytest.approx(tp / (tp + fp + fn))
    assert row.duke_dice == pytest.approx(16 / 22)  # tp 8, fp 6
    assert row.umn_dice == pytest.approx(24 / 26)  # tp 12, fn 2
    # B-scans with reference fluid: 16/18, 4/6, 20/20
    assert row.mean_bscan_dice == pytest.approx(np.mean([16 / 18, 4 / 6, 1.0]))
    assert row.false_positive_rate == pytest.approx(0.5)  # of the two fluid-free B-scans, one has fluid predicted
    per_run = [2 * 10 / (20 + 2 + 2), 2 * 10 / (20 + 4)]
    assert row.run_dice_mean == pytest.approx(np.mean(per_run))
    assert row.run_dice_sd == pytest.approx(np.std(per_run, ddof=1))
    assert (row.runs, row.seeds, row.train_minutes) == (2, 1, pytest.approx(1.5))
    assert mean_curves(runs)["dice"] == ([50, 100], [pytest.approx(0.3), pytest.approx(0.5)])


def test_seeds_are_pooled_separately_then_averaged():
    runs = [
        _run("focal", 1, 0, duke=[(1, 0, 1)], umn=[(1, 0, 0)], curve=[]),
        _run("focal", 1, 1, duke=[(0, 0, 2)], umn=[(0, 0, 1)], curve=[]),
    ]
    row = next(r for r in summarise(runs) if r.condition == "clean" and r.decision == "argmax")
    assert row.pooled_dice == pytest.approx(np.mean([2 * 2 / (4 + 1), 0.0]))
    assert row.seeds == 2 and math.isfinite(row.run_dice_sd)


def test_run_results_survive_a_round_trip(tmp_path):
    run = _run("tversky", 3, 2, duke=[(1, 2, 3)], umn=[(4, 5, 6)], curve=[(50, 0.25)])
    run.save(tmp_path / "run.json")
    assert RunResult.load(tmp_path / "run.json") == run


def test_smoke_run_trains_and_reports_every_arm_and_resumes(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "loss_study.py"),
        "--smoke",
        "--out",
        str(tmp_path / "runs"),
        "--report",
        str(tmp_path / "report"),
        "--threads",
        "1",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    arms = [arm for arm in ARMS if arm != "swin_unetr"]
    assert len(list((tmp_path / "runs").glob("*/fold*_seed0.json"))) == 2 * len(arms)
    with open(tmp_path / "report" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({row["arm"] for row in rows}) == sorted(arms)
    assert all(0.0 <= float(row["pooled_dice"]) <= 1.0 for row in rows)
    assert all(int(row["runs"]) == 2 for row in rows)
    results = (tmp_path / "report" / "results.md").read_text()
    assert all(f"| {arm} |" in results for arm in arms)
    assert (tmp_path / "report" / "curves.png").stat().st_size > 10_000
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and "fold 1 seed 0" not in again.stdout  # saved runs are not trained again


def test_smoke_settings_budget_is_two_steps():
    settings = StudySettings(steps=2, steps_per_epoch=1)
    config = settings.train_config("dice", seed=0)
    assert config.epochs * config.steps_per_epoch == 2
