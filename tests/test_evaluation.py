"""Evaluation rows, noise, the second grader, and the evaluate and train commands."""

import numpy as np
import pytest

from napari_octfluid.cli import main
from napari_octfluid.evaluation import add_noise, evaluate, grader_rows
from napari_octfluid.io import write_tiff
from napari_octfluid.labels import IGNORE
from napari_octfluid.model import load_model
from napari_octfluid.subjects import Subject


def test_noise_is_added_in_grey_levels_and_clipped():
    images = np.full((2, 50, 50), 250, np.uint8)
    noisy = add_noise(images, 20.0)
    assert noisy.dtype == np.uint8 and noisy.max() == 255
    assert 15 < np.std(add_noise(np.full((2, 50, 50), 128, np.uint8), 20.0).astype(float)) < 25
    assert add_noise(images, 0) is images


def test_second_grader_rows_ignore_unlabelled_columns():
    first = np.zeros((2, 4, 6), np.uint8)
    second = first.copy()
    first[:, 1, 1:3] = 1
    second[:, 1, 1:4] = 1
    first[:, :, 5] = second[:, :, 5] = IGNORE
    images = np.zeros(first.shape, np.uint8)
    [row] = grader_rows([Subject("duke_01", images, first, second), Subject("umn_01", images, first)])
    assert row.group == "duke" and row.rater == "grader 2"  # umn_01 has no second grader: no row
    assert row.agreement.pooled_dice == pytest.approx(2 * 4 / (4 + 6))


def test_a_pixel_only_the_second_grader_left_unknown_does_not_count():
    first = np.zeros((1, 4, 6), np.uint8)
    first[0, 1, 1:3] = 1
    second = first.copy()
    second[0, 1, 2] = IGNORE  # where the first grader saw fluid: neither a miss nor a hit
    [row] = grader_rows([Subject("duke_01", np.zeros(first.shape, np.uint8), first, second)])
    assert row.agreement.pooled_dice == pytest.approx(1.0)


def test_evaluate_gives_a_row_per_group_and_noise_level(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    images = np.random.default_rng(0).integers(0, 255, (2, 40, 60), dtype=np.uint8)
    labels = np.zeros((2, 40, 60), np.uint8)
    labels[0, 10:20, 10:30] = 1
    subjects = [Subject("a", images, labels, dataset="duke"), Subject("b", images, labels, dataset="umn")]
    rows = evaluate(model, subjects, [0, 10])
    assert [(r.group, r.noise_sigma) for r in rows] == [
        ("duke", 0),
        ("umn", 0),
        ("all", 0),
        ("duke", 10),
        ("umn", 10),
        ("all", 10),
    ]
    assert all(r.agreement.n_bscans == (4 if r.group == "all" else 2) for r in rows)


def test_evaluate_and_train_commands(tiny_checkpoint, tmp_path, capsys, train_argv):
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (3, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[:, 20:36, 24:44] = 1
    images[labels == 1] = 40
    image_path = write_tiff(tmp_path / "scan.tif", images, kind="image")
    label_path = write_tiff(tmp_path / "mask.tif", labels)
    assert (
        main(
            [
                "evaluate",
                "--images",
                str(image_path),
                "--labels",
                str(label_path),
                "--weights",
                str(tiny_checkpoint),
                "--noise-sigma",
                "0",
                "20",
                "--csv",
                str(tmp_path / "e.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "pooled Dice" in out and (tmp_path / "e.csv").read_text().count("\n") == 3
    options = {"init": tiny_checkpoint, "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "device": "cpu"}
    assert main(train_argv(image_path, label_path, **options, out=tmp_path / "run")) == 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt"]


def test_train_refuses_mismatched_inputs(tmp_path, capsys):
    image_path = write_tiff(tmp_path / "scan.tif", np.zeros((3, 32, 32), np.uint8), kind="image")
    label_path = write_tiff(tmp_path / "mask.tif", np.zeros((2, 32, 32), np.uint8))
    assert main(["train", "--images", str(image_path), "--labels", str(label_path)]) == 1
    assert "must match" in capsys.readouterr().err


def test_markdown_table_has_a_row_per_result():
    from napari_octfluid.evaluation import EvaluationRow, markdown_table
    from napari_octfluid.metrics import Agreement

    rows = [
        EvaluationRow("duke", "model", 0.0, Agreement(0.75, 0.6, 0.61, 0.0, 11)),
        EvaluationRow("duke", "grader 2", 0.0, Agreement(0.706, 0.545, 0.56, 0.47, 55)),
    ]
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 4 and lines[2] == "| duke | model | 0 | 0.750 | 0.600 | 0.610 | 0.00 | 11 |"


def test_evaluate_leaves_out_bscans_nobody_annotated(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    images = np.random.default_rng(0).integers(0, 255, (3, 40, 60), dtype=np.uint8)
    labels = np.zeros((3, 40, 60), np.uint8)
    labels[1] = IGNORE
    [row] = evaluate(model, [Subject("umn_01", images, labels)])
    assert (row.group, row.agreement.n_bscans) == ("umn", 2)


def test_evaluate_under_shifts_gives_rows_per_shift_dataset_and_subject(tiny_checkpoint):
    from napari_octfluid.evaluation import CLEAN, robustness_table

    model, _ = load_model(tiny_checkpoint)
    images = np.random.default_rng(0).integers(0, 255, (2, 40, 60), dtype=np.uint8)
    labels = np.zeros((2, 40, 60), np.uint8)
    labels[0, 10:20, 10:30] = 1
    subjects = [
        Subject("duke_01", images, labels),
        Subject("umn_01", images, labels),
        Subject("umn_02", images, labels),
    ]
    rows = evaluate(model, subjects, shifts=["axial_x2", "speckle"], per_subject=True)
    groups = ["duke", "umn", "all", "duke_01", "umn_01", "umn_02"]
    assert [(r.shift, r.group) for r in rows] == [(s, g) for s in (CLEAN, "axial_x2", "speckle") for g in groups]
    by_key = {(r.shift, r.group): r.agreement for r in rows}
    assert by_key[("axial_x2", "umn")].n_bscans == 4 and by_key[(CLEAN, "all")].n_bscans == 6
    table = robustness_table(rows).splitlines()
    assert [line.split()[0] for line in table[2:]] == [CLEAN, "axial_x2", "speckle"]
    assert table[0].split()[-2:] == ["umn_02", "Dice"] and table[2].split()[2] == "+0.000"
    clean = by_key[(CLEAN, "all")]
    assert (
        table[2].split()[1] == f"{clean.pooled_dice:.3f}" and table[2].split()[3] == f"{clean.false_positive_rate:.2f}"
    )


def test_the_false_alarm_rate_counts_fluid_free_bscans_with_any_predicted_fluid():
    from napari_octfluid.evaluation import agreement_rows
    from napari_octfluid.labels import counts_against

    reference = np.zeros((4, 10, 10), np.uint8)
    reference[0, 2:5, 2:5] = 1  # one B-scan with fluid, three without
    prediction = np.zeros_like(reference)
    prediction[0, 2:5, 2:5] = 1
    prediction[1, 0, 0] = 1  # one pixel is a false alarm
    [row] = agreement_rows({"umn": [counts_against(prediction, reference)]}, 0.0)
    assert row.agreement.false_positive_rate == pytest.approx(1 / 3) and row.agreement.pooled_dice < 1
