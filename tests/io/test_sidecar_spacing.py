"""The spacing kept with the corrections (issue 20): saved in the sidecar with where it came from, read back, and
refused when it could not be an OCT's; sidecars without it (older octfluid) stay readable."""

import numpy as np
import pytest
from sidecar_forgery import corrections_for, npy_bytes, replace_members, scan_pixels

from napari_octfluid.io.scan_identity import ScanIdentity
from napari_octfluid.io.sidecar import SavedSpacing, SidecarError, read_sidecar, save_sidecar, sidecar_path


@pytest.fixture
def pixels():
    return scan_pixels(0)


@pytest.mark.parametrize(
    "spacing",
    [
        SavedSpacing((0.12, 0.0039, 0.0118), "entered by the user"),
        SavedSpacing((None, 0.0039, 0.0118), "ImageJ TIFF resolution"),  # unknown axes stay unknown, not 0 or 1
    ],
)
def test_the_spacing_and_its_source_come_back(tmp_path, pixels, spacing):
    labels, state = corrections_for(pixels)
    path = save_sidecar(sidecar_path(tmp_path / "scan.tif"), labels, state, ScanIdentity.of(pixels), spacing)
    assert read_sidecar(path, scan=ScanIdentity.of(pixels)).spacing == spacing


@pytest.mark.parametrize("spacing", [None, SavedSpacing((None, None, None), "unknown")])
def test_no_known_spacing_saves_none(tmp_path, pixels, spacing):
    labels, state = corrections_for(pixels)
    path = save_sidecar(sidecar_path(tmp_path / "scan.tif"), labels, state, ScanIdentity.of(pixels), spacing)
    assert read_sidecar(path).spacing is None
    assert "spacing_mm" not in np.load(path).files  # what an older octfluid wrote: readable as before


@pytest.mark.parametrize(
    "forged, phrase",
    [
        (np.array([0.12, 3.9, 0.0118]), "impossible spacing, left out: 3900 um is not an OCT pixel size along depth"),
        (np.array([0.12, -0.0039, 0.0118]), "impossible spacing, left out: the spacing along depth must be"),
    ],
)
def test_an_impossible_spacing_is_left_out_and_the_corrections_restored(tmp_path, pixels, forged, phrase):
    labels, state = corrections_for(pixels)
    spacing = SavedSpacing((0.12, 0.0039, 0.0118), "entered by the user")
    path = save_sidecar(sidecar_path(tmp_path / "scan.tif"), labels, state, ScanIdentity.of(pixels), spacing)
    replace_members(path, spacing_mm=npy_bytes(forged))
    restored = read_sidecar(path, scan=ScanIdentity.of(pixels))
    assert restored.spacing is None and phrase in restored.notice
    np.testing.assert_array_equal(restored.labels, labels)


@pytest.mark.parametrize(
    "forged, phrase",
    [
        (np.array([0.12, 0.0039]), "holds spacing_mm of shape (2,), not of shape (3,)"),
        (np.array(["a", "b", "c"]), "holds spacing_mm of type"),
    ],
)
def test_a_malformed_spacing_member_is_refused(tmp_path, pixels, forged, phrase):
    labels, state = corrections_for(pixels)
    spacing = SavedSpacing((0.12, 0.0039, 0.0118), "entered by the user")
    path = save_sidecar(sidecar_path(tmp_path / "scan.tif"), labels, state, ScanIdentity.of(pixels), spacing)
    replace_members(path, spacing_mm=npy_bytes(forged))
    with pytest.raises(SidecarError) as refused:
        read_sidecar(path, scan=ScanIdentity.of(pixels))
    assert phrase in str(refused.value)
