"""The Duke DME dataset's original .mat files (Chiu et al. 2015), built here with scipy.io.savemat in their layout:
``images`` depth x width x B-scans (uint8), each grader's fluid of the same shape with NaN where not annotated."""

import numpy as np
import pytest
import scipy.io

from napari_octfluid.io import OctReadError, read_duke_mat, read_volume
from napari_octfluid.io.errors import ScanTooLargeError
from napari_octfluid.memory import set_memory_limit

DEPTH, WIDTH, BSCANS = 12, 16, 5


def duke_file(path, with_fluid=True, compress=False):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (DEPTH, WIDTH, BSCANS)).astype(np.uint8)
    variables = {"images": images, "manualLayers1": np.full((8, WIDTH, BSCANS), np.nan), "age": np.array([[61.0]])}
    if with_fluid:
        fluid = np.full((DEPTH, WIDTH, BSCANS), np.nan)  # B-scans the grader skipped stay NaN throughout
        fluid[:, 2:14, 1] = 0  # annotated columns of B-scan 1, between the grader's NaN margins
        fluid[4:7, 5:9, 1] = 3  # a fluid region, numbered as the graders numbered theirs
        fluid[:, :, 3] = 0
        fluid[8, 10, 3] = 1
        variables["manualFluid1"] = fluid
        variables["manualFluid2"] = np.where(np.isnan(fluid), np.nan, 0.0)
    scipy.io.savemat(path, variables, do_compression=compress)
    return path, images, variables.get("manualFluid1")


@pytest.fixture
def memory_limit():
    yield set_memory_limit
    set_memory_limit(None)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_images_as_the_scan_in_bscan_depth_width_order(tmp_path, compress):
    path, images, _ = duke_file(tmp_path / "Subject_01.mat", compress=compress)
    volume = read_volume(path)
    assert volume.data.shape == (BSCANS, DEPTH, WIDTH) and volume.data.flags.c_contiguous
    for index in range(BSCANS):
        np.testing.assert_array_equal(volume.data[index], images[:, :, index])
    assert volume.spacing_mm == (None, None, None)  # the files store none: never guessed
    assert volume.meta["format"] == "Duke DME .mat" and not volume.is_labels
    assert volume.meta["duke_graders"] == ["manualFluid1", "manualFluid2"]


def test_grader_fluid_as_labels_with_not_annotated_as_255(tmp_path):
    path, _, fluid = duke_file(tmp_path / "Subject_01.mat")
    labels = read_duke_mat(path, labels="manualFluid1")
    assert labels.is_labels and labels.data.dtype == np.uint8
    assert labels.data.shape == (BSCANS, DEPTH, WIDTH)
    expected = np.where(np.isnan(fluid), 255, np.where(fluid > 0, 1, 0)).astype(np.uint8)
    np.testing.assert_array_equal(labels.data, np.moveaxis(expected, 2, 0))
    assert (labels.data[0] == 255).all() and set(np.unique(labels.data[1])) == {0, 1, 255}
    assert labels.meta["grader"] == "manualFluid1"


def test_missing_grader_is_refused(tmp_path):
    path, _, _ = duke_file(tmp_path / "scan_only.mat", with_fluid=False)
    assert read_volume(path).meta["duke_graders"] == []
    with pytest.raises(OctReadError, match="holds no 'manualFluid2' variable"):
        read_duke_mat(path, labels="manualFluid2")


def test_other_matlab_file_is_refused(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"volume": np.zeros((4, 4))})
    with pytest.raises(OctReadError, match="other.mat: holds no 'images' variable \\(it has volume\\)"):
        read_volume(path)


def test_matlab_v73_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "hdf5.mat"
    path.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 ." + bytes(600))
    with pytest.raises(OctReadError, match="hdf5.mat: is a MATLAB v7.3 file \\(HDF5\\).*-v7"):
        read_volume(path)


def test_damaged_file(tmp_path):
    path, _, _ = duke_file(tmp_path / "damaged.mat")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(OctReadError, match="damaged.mat: "):
        read_volume(path)


def test_memory_budget_checked_before_loading(tmp_path, memory_limit, monkeypatch):
    import napari_octfluid.io.duke_mat as duke_mat

    path, _, _ = duke_file(tmp_path / "Subject_01.mat")
    monkeypatch.setattr(duke_mat, "_load", lambda *_: pytest.fail("loaded before the memory check"))
    memory_limit(1000)
    with pytest.raises(ScanTooLargeError, match="Reading 'manualFluid1' \\(12 x 16 x 5 float64\\)"):
        read_duke_mat(path, labels="manualFluid1")


def test_napari_reader_opens_the_scan_with_each_graders_fluid(tmp_path):
    pytest.importorskip("napari")
    from napari_octfluid._reader import napari_get_reader

    path, images, fluid = duke_file(tmp_path / "Subject_01.mat")
    reader = napari_get_reader(str(path))
    assert reader is not None
    (scan, scan_kwargs, scan_kind), *graders = reader(str(path))
    assert scan_kind == "image" and scan.shape == (BSCANS, DEPTH, WIDTH)
    assert [(kwargs["name"], kind) for _, kwargs, kind in graders] == [
        ("Subject_01 fluid (grader 1)", "labels"),
        ("Subject_01 fluid (grader 2)", "labels"),
    ]
    grader1 = graders[0][0]
    assert grader1[1, 5, 6] == 1 and (grader1[0] == 255).all()
    assert scan_kwargs["units"] == ("pixel",) * 3  # no spacing in the file: pixels, not a guessed micrometre
