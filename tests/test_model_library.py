"""Fine-tuned models kept by name and device (issue 19, item 4): names, device matching, keeping and listing."""

import os

import pytest

from napari_octfluid.model import load_model
from napari_octfluid.model_library import (
    MODELS_ENV,
    KeptModel,
    ModelNameError,
    checked_name,
    keep_model,
    kept_models,
    library_folder,
    model_for_device,
    same_device,
)


@pytest.mark.parametrize("name", ["Clinic A", "cirrus-5000_v2", "Topcon (Maestro) 2.1", "a"])
def test_names_that_make_files(name):
    assert checked_name(f"  {name} ") == name


@pytest.mark.parametrize(
    "name", ["", "../escape", "a/b", "C:evil", ".hidden", "x" * 65, "ends with dot.", "tab\there", "NUL", "com1.pt"]
)
def test_names_that_could_not_be_files_are_refused(name):
    with pytest.raises(ModelNameError, match="cannot name a model"):
        checked_name(name)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Heidelberg Engineering Spectralis", "HEIDELBERG ENGINEERING  spectralis", True),
        ("Carl Zeiss Meditec Cirrus HD-OCT", "carl zeiss meditec cirrus hd oct", True),  # punctuation aside
        ("Heidelberg Engineering Spectralis", "Heidelberg Engineering", False),  # another (or unknown) model
        ("", "", False),  # an unknown device matches nothing
    ],
)
def test_device_matching(a, b, same):
    assert same_device(a, b) is same


def test_the_folder_is_the_environments_or_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "m"))
    assert library_folder() == tmp_path / "m"
    monkeypatch.delenv(MODELS_ENV)
    assert library_folder().parts[-2:] == ("octfluid", "models")


def test_a_kept_model_is_listed_and_offered_for_its_device_only(tmp_path, tiny_checkpoint):
    path = keep_model(tiny_checkpoint, "Clinic A Cirrus", "Carl Zeiss Meditec Cirrus", folder=tmp_path)
    assert path == tmp_path / "Clinic A Cirrus.pt"
    model, payload = load_model(path)  # a checkpoint like any other, with its name and device inside
    assert (payload["model_name"], payload["for_device"]) == ("Clinic A Cirrus", "Carl Zeiss Meditec Cirrus")
    [kept] = kept_models(tmp_path)
    assert kept == KeptModel("Clinic A Cirrus", path, "Carl Zeiss Meditec Cirrus", "")
    assert model_for_device("CARL ZEISS MEDITEC CIRRUS", [kept]) == kept
    assert model_for_device("Heidelberg Engineering Spectralis", [kept]) is None
    assert model_for_device(None, [kept]) is None  # a scan whose file names no device: the shipped weights


def test_the_newest_of_two_models_for_one_device_is_offered(tmp_path, tiny_checkpoint):
    old = keep_model(tiny_checkpoint, "old", "Topcon", folder=tmp_path)
    new = keep_model(tiny_checkpoint, "new", "Topcon", folder=tmp_path)
    os.utime(old, (1_000_000, 1_000_000))
    assert model_for_device("topcon", kept_models(tmp_path)).path == new


def test_keeping_again_under_a_name_replaces_it(tmp_path, tiny_checkpoint):
    keep_model(tiny_checkpoint, "A", "Topcon", folder=tmp_path)
    keep_model(tiny_checkpoint, "A", "Cirrus", folder=tmp_path)
    assert [(m.name, m.device) for m in kept_models(tmp_path)] == [("A", "Cirrus")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.json", "A.pt"]  # no temporary left behind


def test_a_checkpoint_without_description_is_offered_by_file_name_for_any_device(tmp_path, tiny_checkpoint):
    (tmp_path / "copied.pt").write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "broken.pt").write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "broken.json").write_text("{not json")
    assert [(m.name, m.device) for m in kept_models(tmp_path)] == [("broken", ""), ("copied", "")]
    assert kept_models(tmp_path / "missing") == []


def test_only_safe_checkpoints_are_kept(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(Exception, match="junk.pt"):
        keep_model(junk, "x", folder=tmp_path / "lib")
    assert not (tmp_path / "lib" / "x.pt").exists()


def test_a_model_removed_since_it_was_listed_is_not_offered(tmp_path, tiny_checkpoint):
    path = keep_model(tiny_checkpoint, "gone", "Topcon", folder=tmp_path)
    listed = kept_models(tmp_path)
    path.unlink()
    assert model_for_device("Topcon", listed) is None
