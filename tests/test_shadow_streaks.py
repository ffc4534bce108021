"""The shadow-streak rule: narrow vertical fluid in a vessel shadow goes, cysts stay."""

from pathlib import Path

import numpy as np
import pytest

import napari_octfluid
from napari_octfluid.shadow_streaks import remove_shadow_streaks, shadowed_columns


def shadowed_bscan() -> np.ndarray:
    """A normalised B-scan: tissue at 0.6 with a vessel shadow (columns 50-57 at 0.15 from row 10 down)."""
    bscan = np.full((100, 200), 0.6, np.float32)
    bscan[10:, 50:58] = 0.15
    return bscan


# (region rows, region columns, kept): hand-placed fluid regions of one B-scan
REGIONS = [
    ((30, 60), (51, 57), False),  # a streak in the shadow: 30 tall, 6 wide, every column shadowed
    ((30, 45), (100, 115), True),  # a round cyst outside it
    ((30, 60), (150, 156), True),  # as narrow and tall, but in lit tissue
    ((70, 80), (40, 68), True),  # across the shadow: wider than tall, most columns lit
    ((80, 86), (51, 57), True),  # in the shadow, but as wide as tall: a small cyst
]


@pytest.mark.parametrize(("rows", "columns", "kept"), REGIONS)
def test_streaks_in_a_shadow_go_and_cysts_stay(rows, columns, kept):
    labels = np.zeros((100, 200), np.uint8)
    labels[slice(*rows), slice(*columns)] = 1
    cleaned = remove_shadow_streaks(labels, shadowed_bscan())
    assert cleaned.shape == labels.shape and cleaned.dtype == labels.dtype
    assert (cleaned == labels).all() if kept else not cleaned.any()


def test_regions_together_in_one_bscan_fare_as_each_does_alone():
    # the rule labels only the rows and columns that hold fluid: the streak's place within them must not matter
    labels = np.zeros((100, 200), np.uint8)
    for rows, columns, _ in REGIONS:
        labels[slice(*rows), slice(*columns)] = 1
    expected = labels.copy()
    for rows, columns, kept in REGIONS:
        if not kept:
            expected[slice(*rows), slice(*columns)] = 0
    np.testing.assert_array_equal(remove_shadow_streaks(labels, shadowed_bscan()), expected)


def test_the_shadow_is_found_in_its_columns_alone_and_volumes_work_per_bscan():
    columns = shadowed_columns(shadowed_bscan()[None])[0]
    assert columns[50:58].all() and columns.sum() == 8
    labels = np.zeros((2, 100, 200), np.uint8)
    labels[:, 30:60, 51:57] = 1
    images = np.stack([shadowed_bscan(), np.full((100, 200), 0.6, np.float32)])  # the second has no shadow
    cleaned = remove_shadow_streaks(labels, images)
    assert not cleaned[0].any() and (cleaned[1] == labels[1]).all()


def test_the_sample_scans_expert_fluid_is_left_whole():
    from napari_octfluid.io import read_volume
    from napari_octfluid.preprocess import normalize_bscans

    folder = Path(napari_octfluid.__file__).parent / "sample_data"
    scan = read_volume(folder / "duke_dme_subject01_images.tif").data
    expert = read_volume(folder / "duke_dme_subject01_fluid_grader1.tif").data.astype(np.uint8)
    assert expert.any()
    np.testing.assert_array_equal(remove_shadow_streaks(expert, normalize_bscans(scan)), expert)
