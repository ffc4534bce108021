"""The appearance shifts: deterministic for a seed, images and labels kept aligned, label values kept."""

import numpy as np
import pytest

from napari_octfluid.labels import BACKGROUND, FLUID, IGNORE
from napari_octfluid.shifts import SHIFTS, Shift, apply_shift, get_shift

GEOMETRIC = {"axial_x2", "axial_x0.5", "lateral_x0.5", "lateral_x1.5", "registration_border", "white_border"}
# the presets that resample or move the B-scans
GEOMETRIC_PRESETS = {"vendor_unaveraged", "vendor_cirrus_like", "vendor_topcon_like"}


def phantom(dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """Two B-scans: grey tissue with a dark cyst labelled fluid, and a column band nobody annotated."""
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    images = np.zeros((2, 64, 96), dtype)
    images[:, 16:52] = np.asarray(0.6 * top, dtype)
    images[:, 28:40, 40:60] = np.asarray(0.1 * top, dtype)  # the cyst
    labels = np.zeros(images.shape, np.uint8)
    labels[:, 28:40, 40:60] = FLUID
    labels[:, :, 88:] = IGNORE
    return images, labels


@pytest.mark.parametrize("name", list(SHIFTS))
def test_each_shift_is_deterministic_for_a_seed_and_keeps_shapes_types_and_label_values(name):
    images, labels = phantom()
    first = apply_shift(name, images, labels, seed=3)
    again = apply_shift(name, images, labels, seed=3)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    shifted, moved = first
    assert shifted.shape == moved.shape and shifted.dtype == images.dtype and moved.dtype == labels.dtype
    assert set(np.unique(moved)) <= {BACKGROUND, FLUID, IGNORE} and (moved == FLUID).any()
    if name not in GEOMETRIC | GEOMETRIC_PRESETS:
        assert shifted.shape == images.shape and np.array_equal(moved, labels)  # intensity only
    assert not np.array_equal(shifted, images)  # it did something
    np.testing.assert_array_equal(images, phantom()[0])  # the inputs are left as they were


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle", "noise_floor", "vessel_shadows", "registration_border"])
def test_random_shifts_differ_between_seeds_and_volumes(name):
    images, labels = phantom()
    assert not np.array_equal(
        apply_shift(name, images, labels, seed=0)[0], apply_shift(name, images, labels, seed=1)[0]
    )
    assert not np.array_equal(
        apply_shift(name, images, labels, seed=0, index=0)[0], apply_shift(name, images, labels, seed=0, index=1)[0]
    )


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("axial_x2", (2, 128, 96)),
        ("axial_x0.5", (2, 32, 96)),
        ("lateral_x0.5", (2, 64, 48)),
        ("lateral_x1.5", (2, 64, 144)),
    ],
)
def test_resampling_moves_the_labelled_cyst_with_the_image(name, shape):
    images, labels = phantom()
    shifted, moved = apply_shift(name, images, labels)
    assert shifted.shape == moved.shape == shape
    cyst = moved == FLUID
    # the labelled cyst lies on the dark pixels of the resampled image: every labelled pixel is nearer the cyst's
    # grey (25) than the tissue's (153), at most an even blend of both on its edge
    assert shifted[cyst].max() <= (25 + 153) / 2 + 1 and np.median(shifted[cyst]) == 25
    factor_y, factor_x = shape[1] / 64, shape[2] / 96
    rows, columns = np.nonzero(cyst[0])
    assert rows.min() == pytest.approx(28 * factor_y, abs=1) and rows.max() + 1 == pytest.approx(40 * factor_y, abs=1)
    assert columns.min() == pytest.approx(40 * factor_x, abs=1)
    # the unannotated band is still unannotated, at the right edge
    assert (moved[:, :, -1] == IGNORE).all() and (moved[:, :, 0] != IGNORE).all()


def test_registration_border_moves_labels_with_the_tissue_and_pads_with_noisy_near_black():
    images, labels = phantom()
    images[:] = np.maximum(images, 100)  # tissue everywhere, so that only padding is near black
    shifted, moved = apply_shift("registration_border", images, labels, seed=5, strength=0.2)
    for z in range(2):
        cyst = moved[z] == FLUID
        assert cyst.sum() == (labels[z] == FLUID).sum()  # moved whole (the shift keeps it inside the B-scan)
        assert (shifted[z][cyst] == images[0, 30, 45]).all()
        padding = shifted[z] <= 3
        assert padding.any() and (moved[z][padding] == BACKGROUND).all()
    assert shifted.min() == 0 and 0 < shifted[shifted <= 3].max() <= 3  # 0-3 grey levels, not all exactly 0


def test_float_and_16_bit_scans_keep_their_range():
    for dtype in (np.uint16, np.float32):
        images, labels = phantom(dtype)
        shifted, _ = apply_shift("noise_floor", images, labels)
        top = np.iinfo(dtype).max if dtype == np.uint16 else 1.0
        assert shifted.dtype == dtype and 0 <= shifted.min() and shifted.max() <= top
        assert 0.01 * top < shifted[0, 0, :10].mean() < 0.1 * top  # a floor of ~12 8-bit levels, scaled


def test_strength_zero_changes_nothing_for_additive_shifts_and_strength_scales():
    images, labels = phantom()
    for name in ("gaussian_noise", "noise_floor", "brightness"):
        assert np.array_equal(apply_shift(name, images, labels, strength=0)[0], images)
    weak = apply_shift("gaussian_noise", np.full((1, 64, 64), 128, np.uint8), np.zeros((1, 64, 64), np.uint8), 0, 0, 5)
    strong = apply_shift(
        "gaussian_noise", np.full((1, 64, 64), 128, np.uint8), np.zeros((1, 64, 64), np.uint8), 0, 0, 20
    )
    assert 3 < weak[0].astype(float).std() < 7 and 15 < strong[0].astype(float).std() < 25


def test_a_single_bscan_and_mismatched_shapes():
    images, labels = phantom()
    shifted, moved = apply_shift("axial_x2", images[0], labels[0])
    assert shifted.shape == moved.shape == (128, 96)
    with pytest.raises(ValueError, match="differ in shape"):
        SHIFTS["speckle"](images, labels[:, :10], np.random.default_rng(0))
    with pytest.raises(KeyError, match="no shift named 'blur'"):
        get_shift("blur")


def test_registry_holds_named_shifts_with_default_strengths():
    assert all(isinstance(shift, Shift) and shift.name == name for name, shift in SHIFTS.items())
    expected = {"gaussian_noise", "speckle", "noise_floor", "defocus", "vessel_shadows", "media_opacity", "jpeg"}
    assert expected <= set(SHIFTS) and sum(name.startswith("vendor_") for name in SHIFTS) >= 3
