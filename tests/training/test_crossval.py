"""Cross-validation by subject: balanced folds, every subject held out exactly once, pooled held-out figures."""

import numpy as np
import pytest

from napari_octfluid.events import run_to_end
from napari_octfluid.model import MODEL_CONFIGS
from napari_octfluid.subjects import Subject
from napari_octfluid.training.crossval import FoldEnd, FoldStarted, cross_validate, subject_folds
from napari_octfluid.training.engine import TrainConfig

SHARED_NAMES = [f"duke_{i:02d}" for i in range(1, 6)] + [f"umn_{i:02d}" for i in range(15)]


def test_folds_spread_each_dataset_and_hold_every_subject_out_once():
    folds = subject_folds(SHARED_NAMES, 5)
    assert sorted(sum(folds, [])) == sorted(SHARED_NAMES)
    assert [sum(n.startswith("duke") for n in fold) for fold in folds] == [1] * 5
    assert [len(fold) for fold in folds] == [4] * 5


@pytest.mark.parametrize("k", [1, 21])
def test_impossible_fold_counts_are_refused(k):
    with pytest.raises(ValueError, match="folds"):
        subject_folds(SHARED_NAMES, k)


def synthetic_subject(name, seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(150, 20, (2, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[:, 20:36, 24:44] = 1
    images[labels == 1] = 40
    second = labels.copy() if name.startswith("duke") else None
    return Subject(name, images, labels, second)


def test_cross_validation_trains_each_fold_and_pools_the_held_out_predictions(tmp_path):
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, crop=(64, 64), device="cpu")
    events, result = run_to_end(
        cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, (0.0, 10.0), out_dir=tmp_path)
    )
    started = [e for e in events if isinstance(e, FoldStarted)]
    ended = [e for e in events if isinstance(e, FoldEnd)]
    assert [e.held_out for e in started] == [["duke_01", "umn_00"], ["duke_02", "umn_01"]]
    assert len(ended) == 2 and all((tmp_path / f"fold_{e.fold}" / "final.pt").exists() for e in ended)
    pooled = {(row.group, row.rater, row.noise_sigma): row.agreement for row in result.rows}
    assert pooled[("all", "model", 0.0)].n_bscans == 8  # every subject's B-scans, each predicted once
    assert pooled[("all", "model", 10.0)].n_bscans == 8
    assert pooled[("duke", "grader 2", 0.0)].pooled_dice == pytest.approx(1.0)  # identical graders here
    assert {row.group for e in ended for row in e.rows} >= {"fold 1 all", "fold 2 all"}


def test_reuse_tests_trained_folds_again_without_training(tmp_path):
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), device="cpu")
    _, first = run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path))
    events, again = run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path, reuse=True))
    assert not [e for e in events if not isinstance(e, (FoldStarted, FoldEnd))]  # no training step this time
    assert [r.agreement.pooled_dice for r in again.rows] == [r.agreement.pooled_dice for r in first.rows]


def test_only_some_folds_run_and_a_later_reuse_pools_every_fold(tmp_path):
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), device="cpu")
    events, second = run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path, only=(2,)))
    assert [e.held_out for e in events if isinstance(e, FoldStarted)] == [["duke_02", "umn_01"]]
    assert not (tmp_path / "fold_1").exists() and (tmp_path / "fold_2" / "final.pt").exists()
    pooled = {(row.group, row.rater): row.agreement for row in second.rows}
    assert pooled[("all", "model")].n_bscans == 4  # fold 2's subjects only
    run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path, only=(1,)))
    events, pooled_all = run_to_end(
        cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path, reuse=True)
    )
    assert not [e for e in events if not isinstance(e, (FoldStarted, FoldEnd))]  # both folds trained already
    assert {(r.group, r.rater): r.agreement for r in pooled_all.rows}[("all", "model")].n_bscans == 8


def test_a_fold_number_outside_the_folds_is_refused():
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    with pytest.raises(ValueError, match="numbered 1 to 2"):
        run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], TrainConfig(device="cpu"), only=(3,)))


def test_a_second_stage_trains_each_fold_on_from_the_first_stages_same_fold(tmp_path):
    """init_from: fold k starts from the first stage's fold k (never from another fold's model, which saw fold k's
    held-out subjects); a training run of one step at a learning rate of 1e-9 leaves it as it was."""
    import torch

    from napari_octfluid.model import load_model

    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    first = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, crop=(64, 64), device="cpu")
    run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], first, out_dir=tmp_path / "stage1"))
    second = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), device="cpu", learning_rate=1e-9)
    run_to_end(
        cross_validate(
            subjects, 2, MODEL_CONFIGS["tiny"], second, out_dir=tmp_path / "stage2", init_from=tmp_path / "stage1"
        )
    )
    for fold, other in ((1, 2), (2, 1)):
        # the learnt weights (BatchNorm's running statistics move with any training step, whatever its rate)
        after = dict(load_model(tmp_path / "stage2" / f"fold_{fold}" / "final.pt")[0].named_parameters())
        same = dict(load_model(tmp_path / "stage1" / f"fold_{fold}" / "final.pt")[0].named_parameters())
        not_it = dict(load_model(tmp_path / "stage1" / f"fold_{other}" / "final.pt")[0].named_parameters())
        weights = list(after)
        assert all(torch.allclose(after[name], same[name], atol=1e-6) for name in weights)
        assert not all(torch.allclose(after[name], not_it[name], atol=1e-6) for name in weights)


def test_a_second_stage_keeping_half_its_change_saves_the_blend_of_each_fold_with_its_first_stage(tmp_path):
    """change_kept = 0.5 (recipes/robust_weights.toml): each fold's final weights are its first stage's plus half of
    what the same second stage, kept whole, changed (the weights the model card's cross-validation measured by
    blending each fold's two stages afterwards)."""
    import torch

    from napari_octfluid.model import load_model

    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    first = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, crop=(64, 64), device="cpu")
    run_to_end(cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], first, out_dir=tmp_path / "stage1"))
    for kept in (1.0, 0.5):
        second = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, crop=(64, 64), device="cpu", change_kept=kept)
        run_to_end(
            cross_validate(
                subjects,
                2,
                MODEL_CONFIGS["tiny"],
                second,
                out_dir=tmp_path / f"kept_{kept}",
                init_from=tmp_path / "stage1",
            )
        )

    def weights(stage, fold):
        return dict(load_model(tmp_path / stage / f"fold_{fold}" / "final.pt")[0].named_parameters())

    for fold in (1, 2):
        start, whole, half = weights("stage1", fold), weights("kept_1.0", fold), weights("kept_0.5", fold)
        assert any(not torch.allclose(whole[name], start[name]) for name in start)  # the second stage learnt
        for name in start:
            assert torch.allclose(half[name], (start[name] + whole[name]) / 2, atol=1e-6), name


@pytest.mark.parametrize(
    ("make_first_stage", "message"),
    [
        ("missing", "does not exist: cross-validate fold 1 of the first stage"),
        ("other_folds", "held out duke_01, duke_02, umn_00, umn_01, but fold 1 here holds out duke_01, umn_00"),
    ],
)
def test_a_second_stage_without_its_first_stages_folds_is_refused_before_training(tmp_path, make_first_stage, message):
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), device="cpu")
    if make_first_stage == "other_folds":  # a "first stage" of one fold holding every subject out
        from napari_octfluid.model import TransUNet, save_checkpoint

        held = ["duke_01", "duke_02", "umn_00", "umn_01"]
        save_checkpoint(tmp_path / "stage1" / "fold_1" / "final.pt", TransUNet(MODEL_CONFIGS["tiny"]), held_out=held)
    run = cross_validate(
        subjects, 2, MODEL_CONFIGS["tiny"], config, out_dir=tmp_path / "stage2", init_from=tmp_path / "stage1"
    )
    with pytest.raises(ValueError, match=message):
        next(run)  # before the first fold starts
    assert not (tmp_path / "stage2").exists()


def test_cross_validation_pools_every_shift_beside_clean(tmp_path):
    subjects = [synthetic_subject(name, i) for i, name in enumerate(["duke_01", "duke_02", "umn_00", "umn_01"])]
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=(64, 64), device="cpu")
    _, result = run_to_end(
        cross_validate(subjects, 2, MODEL_CONFIGS["tiny"], config, shifts=("gamma", "axial_x2"), out_dir=tmp_path)
    )
    model_rows = {(row.shift, row.group): row.agreement for row in result.rows if row.rater == "model"}
    for shift in ("clean", "gamma", "axial_x2"):
        assert model_rows[(shift, "all")].n_bscans == 8  # every held-out B-scan once, under each shift
        assert {(shift, "duke"), (shift, "umn")} <= set(model_rows)
