"""Issue 19: the axial pixel size of a scan whose file gives none, fitted to the user's corrections; kept by the
fine-tuned model (checkpoint included) and used by prediction only where the scan's file gives no spacing."""

import numpy as np
import pytest
from test_axial_resampling import MODEL_MM, TallDarkRuns, synthetic_scan  # tests/ is on the path, as for bad_files

from napari_octfluid.axial import SPECTRALIS_AXIAL_SPACING_MM, scan_axial_spacing
from napari_octfluid.events import Notice, run_to_end
from napari_octfluid.inference import predict
from napari_octfluid.metrics import Confusion
from napari_octfluid.model import load_model, save_checkpoint
from napari_octfluid.training import finetune
from napari_octfluid.training.axial_fit import AXIAL_RATIOS, FIT_MARGIN, fit_axial_spacing
from napari_octfluid.training.finetune import BscanChoice, finetune_config, load_and_finetune, with_fitted_axial_spacing

HALF = round(MODEL_MM * 0.5, 7)


def true_mask(scale: int) -> np.ndarray:
    """The expert's mask of :func:`synthetic_scan` at ``scale`` times the rows: the tall cyst alone (the short one,
    6 rows at the model's sampling, is not fluid to the stand-in model)."""
    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0, 20:34, 10:30] = 1
    return np.repeat(mask, scale, axis=1)


def test_a_scan_with_twice_the_rows_is_fitted_at_half_the_models_axial_pixel_size():
    """Predicted at its own rows, the stand-in's mask holds the short cyst alone (240 pixels, all false against the
    corrections' 560 of the tall one: Dice 0); at half the model's pixel size the scan is resampled to the model's
    rows and the mask is the tall cyst alone (Dice 1)."""
    events, fit = run_to_end(fit_axial_spacing(TallDarkRuns(), [(synthetic_scan(2), true_mask(2), [0])], "cpu"))
    assert fit.changed and fit.spacing_mm == HALF and fit.used_mm == HALF and fit.current_mm is None
    assert fit.dice[None] == 0.0
    assert fit.dice[HALF] == pytest.approx(1.0) and float(fit.counts.dice) == pytest.approx(fit.dice[HALF])
    assert set(fit.dice) == {None, *(round(MODEL_MM * r, 7) for r in AXIAL_RATIOS if r != 1.0)}  # 1.0 is None
    assert "1.94 um per row" in fit.message() and "Quantify" in fit.message()


def test_a_scan_at_the_models_rows_is_left_as_it_is():
    _, fit = run_to_end(fit_axial_spacing(TallDarkRuns(), [(synthetic_scan(1), true_mask(1), [0])], "cpu"))
    assert not fit.changed and fit.spacing_mm is None and fit.used_mm is None and fit.message() == ""
    assert fit.judged  # judged, and nothing to say
    assert fit.dice[None] == pytest.approx(1.0)


def test_corrections_with_too_little_fluid_change_nothing_and_say_what_would():
    """B-scans corrected by erasing false fluid tell no size apart: the scan stays as it is, and the user is told
    to correct a B-scan with fluid too (the review queue's first B-scans may hold none)."""
    mask = np.zeros((1, 128, 64), np.uint8)
    mask[0, 40:45, 10:30] = 1  # 100 fluid pixels: under MIN_FLUID_TO_JUDGE
    corrected = [(synthetic_scan(2), mask, [0])]
    _, fit = run_to_end(fit_axial_spacing(TallDarkRuns(), corrected, "cpu"))
    assert not fit.changed and not fit.judged and np.isnan(fit.dice[None])
    stand_in = TallDarkRuns()
    events, (model, _) = run_to_end(with_fitted_axial_spacing(stand_in, corrected, "cpu"))
    [notice] = [e.message for e in events if isinstance(e, Notice)]
    assert model is stand_in  # no copy with a fitted size
    assert "too little fluid" in notice and "correct a B-scan with fluid too" in notice


@pytest.fixture
def dice_by_spacing(monkeypatch):
    """``finetune.agreement_counts`` replaced by counts whose pooled Dice is given per axial pixel size (ratio to the
    model's, None: as it is); 1000 corrected fluid pixels, so every one is judged."""

    def install(table):
        def agreement_counts(model, images, labels, chosen, device="auto", axial_spacing_mm=None):
            ratio = None if axial_spacing_mm is None else round(axial_spacing_mm / MODEL_MM, 2)
            dice = table.get(ratio, 0.1)
            tp = 1000 * dice  # 2tp / (2tp + fp + fn) = tp / 1000 = dice with fp = fn = 1000 - tp
            yield from ()
            return Confusion(np.float64(tp), np.float64(1000 - tp), np.float64(1000 - tp))

        monkeypatch.setattr(finetune, "agreement_counts", agreement_counts)

    return install


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({None: 0.70, 0.5: 0.70 + FIT_MARGIN + 0.01}, 0.5),  # far better: fitted
        ({None: 0.70, 0.5: 0.70 + FIT_MARGIN - 0.01}, None),  # better, within the margin: as it is
        ({None: 0.70, 0.5: 0.80, 0.71: 0.85}, 0.71),  # the best of those tried
        ({None: 0.70, 2.0: 0.90}, 2.0),  # a coarser device too
        ({None: 0.90, 0.5: 0.60}, None),  # as it is is best
        ({None: 0.70, 0.5: 0.83, 0.71: 0.85}, 0.5),  # a near tie (FIT_TIE 0.03): the finer size
        ({None: 0.70, 0.5: 0.81, 0.71: 0.85}, 0.71),  # finer, but clearly worse
        ({None: 0.80, 0.5: 0.84, 0.71: 0.86}, 0.71),  # finer and near the best, but within the margin of as it is
        ({None: 0.60, 1.41: 0.80, 2.0: 0.79}, 1.41),  # coarser sizes: the finest near tie is the best itself
    ],
)
def test_the_fit_takes_the_finest_near_best_size_only_beyond_the_margin(dice_by_spacing, table, expected):
    dice_by_spacing(table)
    _, fit = run_to_end(fit_axial_spacing(TallDarkRuns(), [(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), [0])]))
    assert fit.spacing_mm == (None if expected is None else pytest.approx(MODEL_MM * expected, rel=1e-3))


def test_the_fitted_model_is_a_copy_that_keeps_the_size_and_says_so(tiny_checkpoint, dice_by_spacing):
    dice_by_spacing({None: 0.5, 0.5: 0.9})
    model, _ = load_model(tiny_checkpoint)
    corrected = [(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), [0])]
    events, (fitted, _) = run_to_end(with_fitted_axial_spacing(model, corrected))
    assert fitted is not model and model.fitted_axial_spacing_mm is None
    assert fitted.fitted_axial_spacing_mm == pytest.approx(MODEL_MM / 2)
    assert [e for e in events if isinstance(e, Notice) and "um per row" in e.message]


def test_the_job_trains_at_the_fitted_rows_and_the_new_model_keeps_the_size(
    tiny_checkpoint, dice_by_spacing, recorded_data
):
    """The widget's job on a scan without a spacing: the fit, then training B-scans resampled to the model's rows
    as if the scan were at the fitted size (64 rows at half the pixel size: 32), the starting model unchanged."""
    dice_by_spacing({None: 0.5, 0.5: 0.9})
    images = np.full((2, 64, 32), 50, np.uint8)
    labels = np.zeros((2, 64, 32), np.uint8)
    labels[:, 20:40] = 1
    config = finetune_config(images.shape, device="cpu")
    _, run = run_to_end(load_and_finetune(tiny_checkpoint, (images, labels, "scan"), BscanChoice(), config))
    [(train_data, _)] = recorded_data
    assert train_data.images[0].shape == (32, 32)
    assert run.fitted_axial_spacing_mm == pytest.approx(MODEL_MM / 2)
    assert run.starting_model.fitted_axial_spacing_mm is None
    # the fit did the adapting: the preset runs at the fitted size, though the model as it is agreed to Dice 0.5 only
    # (below the line, where it would train the whole network without a fit)
    assert not run.adapted and run.config == config and run.agreement == pytest.approx(0.5)


@pytest.mark.parametrize("agreement", [0.95, float("nan"), 0.5])
def test_another_axial_size_runs_the_preset_whatever_the_agreement(agreement):
    from napari_octfluid.training.finetune import WHOLE_NETWORK, adaptation_for, adapted_to

    assert adaptation_for(agreement, other_axial_size=True) == {}
    assert adaptation_for(0.5) == WHOLE_NETWORK  # without a fit, the same agreement would go further
    tp = 0.0 if np.isnan(agreement) else 1000 * agreement  # NaN: corrections that only erased, nothing to judge
    counts = Confusion(np.float64(tp), np.float64(1000 - tp), np.float64(0 if np.isnan(agreement) else 1000 - tp))
    config, _, message = adapted_to(counts, finetune_config((64, 64)), {"epochs"}, other_axial_size=True)
    assert config == finetune_config((64, 64))
    assert "another axial pixel size" in message and "fine-tuning as set, at that size" in message


@pytest.mark.parametrize("given", [MODEL_MM, None])
def test_no_fit_where_the_file_gives_a_spacing_or_adapting_is_off(
    tiny_checkpoint, dice_by_spacing, recorded_data, given
):
    dice_by_spacing({None: 0.5, 0.5: 0.9})
    images, labels = np.full((1, 64, 32), 50, np.uint8), np.ones((1, 64, 32), np.uint8)
    config = finetune_config(images.shape, device="cpu")
    adapt = given is not None  # with a spacing the fit is skipped; without one, only when adapting is off
    job = load_and_finetune(
        tiny_checkpoint, (images, labels, "s"), BscanChoice(), config, adapt=adapt, axial_spacing_mm=given
    )
    _, run = run_to_end(job)
    assert run.fitted_axial_spacing_mm is None and recorded_data[0][0].images[0].shape == (64, 32)


def test_the_fitted_size_survives_the_checkpoint_and_prediction_uses_it_only_without_a_spacing(
    tmp_path, tiny_checkpoint
):
    model, _ = load_model(tiny_checkpoint)
    assert model.fitted_axial_spacing_mm is None  # every checkpoint without the key
    model.fitted_axial_spacing_mm = MODEL_MM / 2
    path = save_checkpoint(tmp_path / "fitted.pt", model)
    loaded, _ = load_model(path)
    assert loaded.fitted_axial_spacing_mm == pytest.approx(MODEL_MM / 2)
    assert scan_axial_spacing(loaded, None) == pytest.approx(MODEL_MM / 2)
    assert scan_axial_spacing(loaded, 0.002) == 0.002  # the file's spacing wins

    stand_in = TallDarkRuns()
    stand_in.fitted_axial_spacing_mm = MODEL_MM / 2
    said, fitted = run_to_end(predict(synthetic_scan(2), stand_in, "cpu"))
    _, told = run_to_end(predict(synthetic_scan(2), TallDarkRuns(), "cpu", axial_spacing_mm=MODEL_MM / 2))
    at = SPECTRALIS_AXIAL_SPACING_MM
    quiet, at_model = run_to_end(predict(synthetic_scan(2), stand_in, "cpu", axial_spacing_mm=at))
    assert np.array_equal(fitted.labels, told.labels)  # taken at the fitted size: the tall cyst alone
    assert at_model.labels[0, 76:88, 36:56].all()  # a file that gives its spacing is predicted at it
    notices = [e.message for e in said if isinstance(e, Notice)]
    assert notices == [notices[0]] and "predicted as 1.94 um per row" in notices[0]  # the user is told, once
    assert not [e for e in quiet if isinstance(e, Notice)]


def test_a_damaged_fitted_size_is_refused_with_its_name(tmp_path, tiny_checkpoint):
    from napari_octfluid.model import CheckpointError

    model, _ = load_model(tiny_checkpoint)
    model.fitted_axial_spacing_mm = 5.0  # 5 mm per row: no OCT
    path = save_checkpoint(tmp_path / "bad.pt", model)
    with pytest.raises(CheckpointError, match="fitted_axial_spacing_mm"):
        load_model(path)
