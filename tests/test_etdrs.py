"""ETDRS grid, en-face map and fovea on phantoms whose answer is known by construction."""

import numpy as np
import pytest

from napari_octfluid.etdrs import (
    OUTSIDE,
    SECTORS,
    Fovea,
    enface_fluid_pixels,
    enface_fluid_thickness_mm,
    etdrs_coverage,
    etdrs_fluid_volumes,
    find_fovea,
    sector_map,
    sector_names,
)
from napari_octfluid.quantify import SpacingUnknownError, fluid_volume_mm3

SPACING = (0.05, 0.004, 0.02)  # 121 B-scans x 301 A-scans: 6 x 6 mm
CENTRE = Fovea(60.0, 150.0, "given")


def blob(shape, z, x, depth=(10, 20)):
    labels = np.zeros(shape, np.uint8)
    labels[z, depth[0] : depth[1], x] = 1
    return labels


@pytest.mark.parametrize(
    "laterality, dz_bscans, dx_ascans, expected",
    [
        ("OD", 0, 0, "central"),
        ("OD", -20, 0, "inner superior"),  # first B-scan superior: lower index = superior
        ("OD", 20, 0, "inner inferior"),
        ("OD", 0, 50, "inner nasal"),  # right eye: nasal on the right
        ("OS", 0, 50, "inner temporal"),  # left eye: temporal on the right
        ("OS", 0, -50, "inner nasal"),
        ("OD", 0, 100, "outer nasal"),  # 2 mm right
        ("OD", 50, 0, "outer inferior"),  # 2.5 mm down
        ("OD", 0, 149, "outer nasal"),  # 2.98 mm right: just inside the 3 mm radius
    ],
)
def test_a_blob_lands_in_its_sector(laterality, dz_bscans, dx_ascans, expected):
    shape = (121, 30, 301)
    labels = blob(shape, int(CENTRE.bscan) + dz_bscans, int(CENTRE.column) + dx_ascans)
    volumes = etdrs_fluid_volumes(labels, SPACING, CENTRE, laterality)
    assert [name for name, v in volumes.items() if v > 0] == [expected]


def test_beyond_three_millimetres_is_outside_the_grid():
    shape = (121, 30, 401)
    labels = blob(shape, 60, 200 + 160)  # 3.2 mm right of the centre
    volumes = etdrs_fluid_volumes(labels, SPACING, Fovea(60.0, 200.0, "given"), "OD")
    assert [name for name, v in volumes.items() if v > 0] == [OUTSIDE]


def test_first_bscan_inferior_swaps_superior_and_inferior():
    labels = blob((121, 30, 301), 40, 150)
    assert etdrs_fluid_volumes(labels, SPACING, CENTRE, "OD", first_bscan="inferior")["inner inferior"] > 0
    assert etdrs_fluid_volumes(labels, SPACING, CENTRE, "OD", first_bscan="superior")["inner superior"] > 0


def test_sector_volumes_add_up_to_the_total():
    rng = np.random.default_rng(0)
    labels = (rng.random((121, 20, 301)) < 0.05).astype(np.uint8)
    volumes = etdrs_fluid_volumes(labels, SPACING, Fovea(55.3, 140.7, "given"), "OS")
    assert sum(volumes.values()) == pytest.approx(fluid_volume_mm3(labels, SPACING), rel=1e-9)
    assert set(volumes) == set(SECTORS) | {OUTSIDE}


def test_sector_areas_match_the_rings():
    fine = (0.01, 0.004, 0.01)  # 10 um grid: ring areas within a percent of the analytic ones
    sectors = sector_map((701, 701), fine, Fovea(350.0, 350.0, "given"), "OD")
    pixel_mm2 = fine[0] * fine[2]
    assert (sectors == 0).sum() * pixel_mm2 == pytest.approx(np.pi * 0.5**2, rel=0.01)
    for quadrant in range(1, 5):
        assert (sectors == quadrant).sum() * pixel_mm2 == pytest.approx(np.pi * (1.5**2 - 0.5**2) / 4, rel=0.01)
        assert (sectors == quadrant + 4).sum() * pixel_mm2 == pytest.approx(np.pi * (3**2 - 1.5**2) / 4, rel=0.01)


def test_unknown_eye_names_sides_not_nasal_and_temporal():
    assert "inner right" in sector_names(None) and "inner nasal" not in sector_names(None)
    labels = blob((121, 30, 301), 60, 200)
    assert etdrs_fluid_volumes(labels, SPACING, CENTRE, None)["inner right"] > 0


def test_etdrs_needs_the_spacing():
    with pytest.raises(SpacingUnknownError):
        etdrs_fluid_volumes(np.zeros((3, 4, 5), np.uint8), (None, 0.004, 0.01), CENTRE, "OD")


def test_enface_map_counts_fluid_along_each_ascan():
    labels = np.zeros((2, 10, 4), np.uint8)
    labels[1, 2:7, 3] = 1
    labels[0, 0, 0] = 2
    assert enface_fluid_pixels(labels).tolist() == [[1, 0, 0, 0], [0, 0, 0, 5]]
    np.testing.assert_allclose(enface_fluid_thickness_mm(labels, 0.004)[1, 3], 0.02)
    with pytest.raises(SpacingUnknownError):
        enface_fluid_thickness_mm(labels, None)


def retina_phantom(fovea_z=22, fovea_x=70, shape=(41, 120, 160)):
    """A bright retina between a dark vitreous and a brighter RPE line, thinned by a Gaussian pit."""
    z, x = np.mgrid[0 : shape[0], 0 : shape[2]]
    pit = 25 * np.exp(-(((z - fovea_z) * 0.1) ** 2 + ((x - fovea_x) * 0.03) ** 2) / (2 * 0.4**2))
    top = (30 + pit).astype(int)
    images = np.full(shape, 10, np.float32)
    rows = np.arange(shape[1])[None, :, None]
    images[(rows >= top[:, None, :]) & (rows < 90)] = 120
    images[:, 90:93] = 250  # RPE
    rng = np.random.default_rng(1)
    return np.clip(images + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)


def test_fovea_is_found_at_the_pit_of_a_phantom():
    fovea = find_fovea(retina_phantom(), (0.1, 0.004, 0.03))
    assert fovea.how == "detected"
    assert abs(fovea.bscan - 22) <= 1 and abs(fovea.column - 70) <= 3


def test_without_a_pit_the_fovea_falls_back_to_the_scan_centre():
    flat = retina_phantom(fovea_z=-1000)  # the pit far outside the scan: a flat retina
    fovea = find_fovea(flat, (0.1, 0.004, 0.03))
    assert fovea.how.startswith("scan centre") and (fovea.bscan, fovea.column) == (20.0, 79.5)


@pytest.mark.parametrize(
    "bscans, fovea_bscan, expected",
    [
        # 61 B-scans 0.1 mm apart, the fovea in the middle: the whole 6 mm grid is scanned
        (61, 30.0, {name: 1.0 for name in SECTORS}),
        # 31 B-scans ending at the fovea (the first superior): the upper half, exactly
        (
            31,
            30.5,
            {
                "central": 0.5,
                **{f"{ring} superior": 1.0 for ring in ("inner", "outer")},
                **{f"{ring} inferior": 0.0 for ring in ("inner", "outer")},
                **{f"{ring} {side}": 0.5 for ring in ("inner", "outer") for side in ("nasal", "temporal")},
            },
        ),
        # the fovea far from the scan: nothing of the grid is scanned
        (31, 200.0, {name: 0.0 for name in SECTORS}),
    ],
)
def test_etdrs_coverage_is_the_share_of_each_sector_the_scan_covers(bscans, fovea_bscan, expected):
    scanned = etdrs_coverage((bscans, 701), (0.1, 0.004, 0.01), Fovea(fovea_bscan, 350.0, "given"), "OD")
    assert list(scanned) == list(SECTORS)
    assert scanned == pytest.approx(expected, abs=1e-9)


def test_etdrs_coverage_needs_the_en_face_spacing():
    with pytest.raises(SpacingUnknownError):
        etdrs_coverage((25, 512), (None, 0.004, 0.01), Fovea(12, 256, "given"), "OD")
