"""``octfluid predict --model NAME``: a fine-tuned model kept by name is used by name (issue 19, item 4)."""

import pytest

from napari_octfluid.cli import main
from napari_octfluid.io import read_volume
from napari_octfluid.model_library import MODELS_ENV, keep_model


@pytest.fixture
def library(tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    return keep_model(tiny_checkpoint, "Clinic A", "Topcon")


def test_predict_uses_the_model_kept_under_the_name(library, tmp_path, write_tiny_scan, monkeypatch):
    import napari_octfluid.model as model_package

    loaded = []
    real = model_package.load_model
    monkeypatch.setattr(model_package, "load_model", lambda path, *a: loaded.append(path) or real(path, *a))
    scan = write_tiny_scan(tmp_path / "scan.tif")
    assert main(["predict", str(scan), "-o", str(tmp_path / "mask.tif"), "--model", "Clinic A"]) == 0
    assert loaded == [library] and read_volume(tmp_path / "mask.tif").data.shape == (2, 64, 80)


@pytest.mark.parametrize(
    ("name", "said"),
    [("Clinic B", "no model named 'Clinic B'"), ("../up", "cannot name a model")],
)
def test_an_unknown_name_is_one_line_with_the_names_there_are(library, tmp_path, write_tiny_scan, capsys, name, said):
    scan = write_tiny_scan(tmp_path / "scan.tif")
    assert main(["predict", str(scan), "-o", str(tmp_path / "mask.tif"), "--model", name]) != 0
    error = capsys.readouterr().err
    assert said in error and len(error.strip().splitlines()) == 1
    assert "Clinic B" not in said or "'Clinic A'" in error
    assert not (tmp_path / "mask.tif").exists()


def test_weights_and_model_together_are_refused(tmp_path, tiny_checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "x.tif", "-o", str(tmp_path / "m.tif"), "--model", "A", "--weights", str(tiny_checkpoint)])
    assert "not allowed with" in capsys.readouterr().err
