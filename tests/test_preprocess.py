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
def test_padding_mask_is_the_rule_as_first_written(dtype):
    for volume in bscans(dtype, 7):
        mask = padding_mask(volume)
        assert np.array_equal(mask, np.stack([reference_padding(b) for b in volume]))
    padded = bscans(dtype, 7)[-1]
    assert padding_mask(padded)[:, :, :6].all()  # the padded strip on the left is never fluid
