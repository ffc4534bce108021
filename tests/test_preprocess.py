"""Normalisation and the padding rule: the fast paths give exactly what the plain ones give."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from napari_octfluid.preprocess import (
    BLOCK_PIXELS,
    MIN_COUNTED_PIXELS,
    _blocks_to_pixels,
    _normalize_values,
    _touching_border,
    normalize_bscans,
    padding_mask,
)


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
@pytest.mark.parametrize("with_padding", [False, True])
def test_integer_bscans_normalise_bit_for_bit_as_the_float_path(dtype, seed, with_padding):
    for volume in bscans(dtype, seed):
        outside = padding_mask(volume) if with_padding else np.zeros(volume.shape, bool)
        fast = normalize_bscans(volume, outside)
        plain = []
        for bscan, padding in zip(volume, outside):
            counted = ~padding if (~padding).sum() >= MIN_COUNTED_PIXELS else None
            plain.append(np.where(padding, 0.0, _normalize_values(bscan.astype(np.float32), counted)))
        assert fast.dtype == np.float32 and np.array_equal(fast, np.stack(plain).astype(np.float32))
        # and as numpy's percentile says, over the pixels outside the padding
        counted = ~outside[0] if (~outside[0]).sum() >= MIN_COUNTED_PIXELS else np.ones(outside[0].shape, bool)
        low, high = np.percentile(volume[0][counted].astype(np.float32), [0.5, 99.5])
        if high > low:
            expected = np.clip((volume[0].astype(np.float32) - low) / (high - low), 0, 1).astype(np.float32)
            assert np.array_equal(fast[0], np.where(outside[0], np.float32(0), expected))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(32, 90), st.integers(32, 90), st.sampled_from([np.uint8, np.uint16]))
def test_any_integer_bscan_normalises_as_the_float_path(seed, height, width, dtype):
    rng = np.random.default_rng(seed)
    spread = int(rng.integers(1, np.iinfo(dtype).max + 1))
    bscan = rng.integers(0, spread, (height, width), endpoint=True).astype(dtype)
    counted = rng.random((height, width)) < 0.7
    plain = _normalize_values(bscan.astype(np.float32)).astype(np.float32)
    assert np.array_equal(normalize_bscans(bscan, np.zeros(bscan.shape, bool)), plain)
    if counted.sum() >= MIN_COUNTED_PIXELS:
        plain = np.where(counted, _normalize_values(bscan.astype(np.float32), counted), 0).astype(np.float32)
        assert np.array_equal(normalize_bscans(bscan, ~counted), plain)


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


PADDING_CASES = [  # (type, padding levels as fractions of the range): 0-2 grey levels as UMN's exports, 0-8, white,
    # and a uniform grey fill (one level, a grey level of jitter), as some viewers pad
    (np.uint8, (0, 2 / 255)),
    (np.uint8, (0, 8 / 255)),
    (np.uint16, (0, 2 / 255)),
    (np.float32, (0, 2 / 255)),
    (np.uint8, (252 / 255, 1.0)),
    (np.uint8, (0.5, 0.5 + 1 / 255)),
    (np.uint16, (0.7, 0.7 + 1 / 255)),
    (np.float32, (0.3, 0.3 + 1 / 255)),
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


@pytest.mark.parametrize(("dtype", "levels"), [(np.uint8, (252 / 255, 1.0)), (np.uint8, (0.5, 0.5 + 1 / 255))])
@pytest.mark.parametrize("width", [13, 14, 15])
def test_a_bright_border_not_on_a_block_boundary_is_padding_to_its_last_column(dtype, levels, width):
    # blocks of 4 pixels straddle the border's edge when its width is not a multiple of 4; the pixels of the
    # straddling blocks that are at the border's level join it (a bright strip left beside the retina made the
    # shipped weights call fluid along it)
    bscan = tissue_with_border(dtype, levels, width=width)
    mask = padding_mask(bscan)
    assert mask[:, :width].all() and mask[:, width + 2 :].mean() < 0.01 and not mask[35:45, 60:75].any()


@pytest.mark.parametrize("border", [(0, 2 / 255), (252 / 255, 1.0), (0.5, 0.5 + 1 / 255)])
def test_any_constant_border_is_left_out_of_the_statistics_and_reads_black(border):
    # the same tissue with black, white or grey padding normalises to the same figures: the padding neither moves
    # the percentiles nor shows as anything but black (white padding raised the 99.5th percentile to 255)
    reference = normalize_bscans(tissue_with_border(np.uint8, (0, 0)))
    bordered = tissue_with_border(np.uint8, border)
    normalised, padding = normalize_bscans(bordered), padding_mask(bordered)
    assert padding[:, :12].all() and (normalised[:, :12] == 0).all()
    # tissue pixels at a grey fill's level right beside it join the padding: a few, which barely move the percentiles
    tissue = ~padding
    assert tissue[:, 12:].mean() > 0.99
    np.testing.assert_allclose(normalised[tissue], reference[tissue], atol=0.01)


def test_the_sample_scans_padding_is_what_the_rule_gave_before_bright_borders_were_completed():
    # the shared sample (Duke, white and black borders) keeps its padding mask bit for bit: the CRC32 of the packed
    # mask as the rule gave it before this change (605048 pixels over 11 B-scans)
    import zlib
    from pathlib import Path

    import napari_octfluid
    from napari_octfluid.io import read_volume

    sample = Path(napari_octfluid.__file__).parent / "sample_data" / "duke_dme_subject01_images.tif"
    mask = padding_mask(read_volume(sample).data)
    assert int(mask.sum()) == 605048
    assert zlib.crc32(np.packbits(mask).tobytes()) == 2907923510


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), height=st.integers(1, 40), width=st.integers(1, 40), share=st.floats(0.2, 0.8))
def test_regions_touching_the_edge_are_those_a_plain_labelling_finds(seed, height, width, share):
    flat = np.random.default_rng(seed).random((height, width)) < share
    regions, _ = ndimage.label(flat)
    edge = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    np.testing.assert_array_equal(_touching_border(flat, ndimage), np.isin(regions, edge[edge > 0]))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 12),
    columns=st.integers(1, 12),
    extra=st.tuples(*[st.integers(0, 3)] * 2),
)
def test_blocks_become_the_pixels_they_cover_and_the_last_block_reaches_the_edge(seed, rows, columns, extra):
    blocks = np.random.default_rng(seed).random((rows, columns)) < 0.5
    shape = (rows * BLOCK_PIXELS + extra[0], columns * BLOCK_PIXELS + extra[1])
    expected = np.pad(
        np.kron(blocks, np.ones((BLOCK_PIXELS, BLOCK_PIXELS), bool)), [(0, extra[0]), (0, extra[1])], "edge"
    )
    np.testing.assert_array_equal(_blocks_to_pixels(blocks, shape), expected)


@pytest.mark.parametrize("signed, unsigned", [(np.int8, np.uint8), (np.int16, np.uint16), (np.int32, np.uint32)])
def test_a_signed_scan_has_the_padding_of_the_same_scan_shifted_to_unsigned(signed, unsigned):
    """The rule took 0 for black: an int16 scan from -128 to 127 (black at -128) lost 96 % of each B-scan to padding
    and came back with no fluid."""
    rng = np.random.default_rng(3)
    low = np.iinfo(signed).min if signed is not np.int32 else -128
    shifted = rng.integers(40, 200, (2, 64, 96)).astype(unsigned)
    shifted[:, :, :10] = 0  # black registration padding on the left
    as_signed = (shifted.astype(np.int64) + low).astype(signed)
    expected = padding_mask(shifted)
    assert expected[:, :, :8].all() and expected[:, :, 16:].sum() == 0
    np.testing.assert_array_equal(padding_mask(as_signed), expected)
