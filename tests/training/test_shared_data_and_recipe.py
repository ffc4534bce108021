"""The shared expert data (with Duke's unannotated columns marked unknown) and training recipes."""

import numpy as np
import pytest

from napari_octfluid.cli import main
from napari_octfluid.labels import IGNORE
from napari_octfluid.training.recipe import load_recipe, recipe_subjects
from napari_octfluid.training.shared_data import DUKE_ANNOTATED_COLUMNS, load_subjects

REPO_RECIPE = "recipes/default_weights.toml"


def test_duke_columns_outside_the_band_are_unknown(shared_data):
    duke, umn = load_subjects(shared_data, ["duke_02", "umn_03"])
    start, stop = DUKE_ANNOTATED_COLUMNS
    assert (duke.labels[..., :start] == IGNORE).all() and (duke.labels[..., stop:] == IGNORE).all()
    assert set(np.unique(duke.labels[..., start:stop])) <= {0, 1}
    assert duke.second_grader is not None and (duke.second_grader[..., :start] == IGNORE).all()
    assert IGNORE not in umn.labels and umn.second_grader is None
    assert (duke.dataset, umn.dataset) == ("duke", "umn") and len(duke.spacing_mm) == 3
    # the band holds every fluid pixel of both graders
    from napari_octfluid.io import read_volume

    raw = read_volume(shared_data / "duke_dme" / "Subject_02_fluid_grader1.tif").data
    assert raw[..., :start].sum() == 0 and raw[..., stop:].sum() == 0


def test_missing_subject_is_named(shared_data):
    with pytest.raises(FileNotFoundError, match="duke_99"):
        load_subjects(shared_data, ["duke_99"])


def test_the_default_recipe_splits_by_subject(shared_data):
    train = {s.name for s in recipe_subjects(REPO_RECIPE, "train")}
    validation = {s.name for s in recipe_subjects(REPO_RECIPE, "validation")}
    assert not train & validation and len(train | validation) == 20
    recipe = load_recipe(REPO_RECIPE)
    assert len(recipe.train_data) == 4 * 11 + 12 * 25 and len(recipe.val_data) == 11 + 3 * 25
    assert recipe.train_config.loss == "composite"


def test_evaluate_on_the_recipe_reports_the_second_grader(shared_data, tiny_checkpoint, capsys):
    assert main(["evaluate", "--recipe", REPO_RECIPE, "--weights", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[:2] for line in out.splitlines()]
    assert ["duke", "grader"] in rows and ["umn", "model"] in rows and ["all", "model"] in rows
