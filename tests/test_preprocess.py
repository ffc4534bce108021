"""Normalisation and the padding rule: the fast paths give exactly what the plain ones give."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from napari_octfluid.preprocess import _normalize_values, normalize_bscans, padding_mask


def reference_padding(bscan: np.ndarray) -> np.ndarray:
    """The rule as first written: zero (or saturated) regions that touch the border, found with np.isin."""
    saturated = np.iinfo(bscan.dtype).max
    regions, _ = ndimage.label((bscan == 0) | (bscan == saturated))
    edge = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    return np.isin(regions, edge[edge > 0])


def bscans(dtype, seed: int, shape=(3, 40, 50)) -> list[np.ndarray]:
    """Integer B-scans of the kinds real exports hold: noise, a few levels, constant, padded and saturated."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    noise = rng.integers(0, top, shape, endpoint=True).astype(dtype)
    few = rng.choice(np.array([0, 3, 7, top], dtype), shape)
    padded = noise.copy()
    padded[:, :, :6] = 0
    padded[:, :4] = top
    return [noise, few, np.full(shape, 9, dtype), np.zeros(shape, dtype), padded]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("seed", range(4))
def test_integer_bscans_normalise_bit_for_bit_as_the_float_path(dtype, seed):
    for volume in bscans(dtype, seed):
        fast = normalize_bscans(volume)
        plain = np.stack([_normalize_values(b.astype(np.float32)) for b in volume]).astype(np.float32)
        assert fast.dtype == np.float32 and np.array_equal(fast, plain)
        # and as numpy's percentile says
        low, high = np.percentile(volume[0].astype(np.float32), [0.5, 99.5])
        if high > low:
            expected = np.clip((volume[0].astype(np.float32) - low) / (high - low), 0, 1).astype(np.float32)
            assert np.array_equal(fast[0], expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(32, 90), st.integers(32, 90), st.sampled_from([np.uint8, np.uint16]))
def test_any_integer_bscan_normalises_as_the_float_path(seed, height, width, dtype):
    rng = np.random.default_rng(seed)
    spread = int(rng.integers(1, np.iinfo(dtype).max + 1))
    bscan = rng.integers(0, spread, (height, width), endpoint=True).astype(dtype)
    assert np.array_equal(normalize_bscans(bscan), _normalize_values(bscan.astype(np.float32)).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_padding_mask_holds_everything_the_rule_as_first_written_held(dtype):
    for volume in bscans(dtype, 7):
        mask = padding_mask(volume)
        assert (mask | ~np.stack([reference_padding(b) for b in volume])).all()
    padded = bscans(dtype, 7)[-1]
    assert padding_mask(padded)[:, :, :6].all()  # the padded strip on the left is never fluid


def tissue_with_border(dtype, border_levels, seed: int = 0, width: int = 12) -> np.ndarray:
    """A B-scan of textured tissue (grey ~45 % of the range) with a dark cyst inside it, whose ``width`` leftmost
    columns are registration padding drawn from ``border_levels`` (fractions of the range); the cyst is as dark."""
    rng = np.random.default_rng(seed)
    top = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
    bscan = rng.normal(0.45, 0.1, (80, 120)).clip(0.05, 0.95)
    bscan[:, :width] = rng.uniform(*border_levels, (80, width))
    bscan[35:45, 60:75] = rng.uniform(0, 2 / 255, (10, 15))  # a cyst: as dark as UMN's padding, enclosed by tissue
    return (bscan * top).astype(dtype)


PADDING_CASES = [  # (type, padding levels as fractions of the range): 0-2 grey levels as UMN's exports, 0-8, white
    (np.uint8, (0, 2 / 255)),
    (np.uint8, (0, 8 / 255)),
    (np.uint16, (0, 2 / 255)),
    (np.float32, (0, 2 / 255)),
    (np.uint8, (252 / 255, 1.0)),
]


@pytest.mark.parametrize(("dtype", "levels"), PADDING_CASES)
def test_noisy_near_black_or_white_borders_are_padding_and_a_dark_cyst_inside_is_not(dtype, levels):
    bscan = tissue_with_border(dtype, levels)
    mask = padding_mask(bscan)
    assert mask[:, :10].all()  # the padding, whatever its exact values (two columns of blending at its edge)
    assert not mask[35:45, 60:75].any()  # the cyst: as dark, but enclosed by tissue
    assert mask[:, 14:].mean() < 0.01  # the tissue


def test_padding_under_an_added_noise_floor_is_still_padding():
    from napari_octfluid.shifts import apply_shift

    bscan = tissue_with_border(np.uint8, (0, 2 / 255))
    noisy, _ = apply_shift("noise_floor", bscan[None], np.zeros((1, *bscan.shape), np.uint8))
    assert noisy[0, :, :12].max() > 20  # the floor made the padding anything but black
    mask = padding_mask(noisy[0])
    assert mask[:, :10].mean() > 0.95 and not mask[35:45, 60:75].any() and mask[:, 14:].mean() < 0.01
