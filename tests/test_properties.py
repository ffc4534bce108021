"""Property-based tests (hypothesis): the metrics' identities on any masks, and the TIFF reader on any bytes and
any small volume."""

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_octfluid.io import OctReadError, read_volume, write_tiff
from napari_octfluid.metrics import Agreement, confusion

masks = arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)))


@given(masks, st.data())
def test_dice_and_jaccard_identities(a, data):
    b = data.draw(arrays(np.bool_, a.shape))
    ab, ba, aa = confusion(a, b), confusion(b, a), confusion(a, a)
    dice, jaccard = ab.pooled().dice, ab.pooled().jaccard
    assert 0.0 <= dice <= 1.0 and 0.0 <= jaccard <= 1.0
    assert dice == pytest.approx(ba.pooled().dice)  # symmetric
    assert jaccard == pytest.approx(dice / (2 - dice))  # J = D / (2 - D)
    assert aa.pooled().dice == 1.0 and np.all(aa.dice == 1.0)  # a mask agrees with itself, empty or not
    agreement = Agreement.from_confusion(ab)
    assert agreement.n_bscans == a.shape[0]
    assert np.isnan(agreement.false_positive_rate) or 0.0 <= agreement.false_positive_rate <= 1.0


@given(masks, st.data())
def test_unknown_pixels_never_count(a, data):
    b = data.draw(arrays(np.bool_, a.shape))
    valid = data.draw(arrays(np.bool_, a.shape))
    flipped = np.where(valid, b, ~b)  # change the prediction only where the reference is unknown
    before, after = confusion(b, a, valid), confusion(flipped, a, valid)
    for field in ("tp", "fp", "fn"):
        np.testing.assert_array_equal(getattr(before, field), getattr(after, field))


spacing = st.one_of(st.none(), st.floats(1e-4, 1.0, allow_nan=False))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from([np.uint8, np.uint16, np.float32]),
    st.tuples(st.integers(1, 3), st.integers(2, 20), st.integers(2, 20)),
    spacing,
    spacing,
    spacing,
    st.data(),
)
def test_tiff_round_trip_keeps_data_and_spacing(tmp_path_factory, dtype, shape, dz, dy, dx, data):
    if np.issubdtype(dtype, np.integer):
        volume = data.draw(arrays(dtype, shape))
    else:
        volume = data.draw(arrays(dtype, shape, elements=st.floats(0, 1, width=32)))
    path = write_tiff(tmp_path_factory.mktemp("rt") / "v.tif", volume, (dz, dy, dx), kind="image")
    back = read_volume(path)
    np.testing.assert_array_equal(back.data.reshape(volume.shape), volume)
    for read, written in zip(back.spacing_mm, (dz, dy, dx)):
        assert (read is None) == (written is None)
        if written is not None:
            assert read == pytest.approx(written, rel=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([b"II*\x00", b"MM\x00*", b"II+\x00", b""]), st.binary(max_size=400))
def test_any_bytes_named_tif_give_a_volume_or_a_clear_error(tmp_path_factory, magic, body):
    path = tmp_path_factory.mktemp("bytes") / "scan.tif"
    path.write_bytes(magic + body)
    try:
        volume = read_volume(path)
    except OctReadError as error:
        assert "scan.tif" in str(error)
    else:
        assert volume.data.ndim == 3
    assert path.read_bytes() == magic + body  # the file is never modified


# Issue 21: headers declaring any size, from a few pixels to far more than any machine has. Each file is a few
# kilobytes; under an 8 MiB budget each is either read (it fits) or refused with octfluid's one-line error, and
# never meets numpy's MemoryError or costs more than the budget (numpy's allocations are traced).
DECLARED_LIMIT = 8 * 2**20
sizes = st.one_of(st.integers(1, 64), st.integers(1, 2**16), st.integers(1, 2**31 - 1))
PNG_MODES = [(0, 8), (0, 16), (2, 8), (2, 16), (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)]


def _read_within_budget(path):
    import tracemalloc

    from napari_octfluid.memory import set_memory_limit

    set_memory_limit(DECLARED_LIMIT)
    tracemalloc.start()
    try:
        try:
            volume = read_volume(path)
        except OctReadError as error:
            event("refused: over the budget" if isinstance(error, MemoryError) else "refused: damaged")
            named = {path.name, *(child.name for child in path.iterdir())} if path.is_dir() else {path.name}
            assert str(error).split(":")[0] in named and "\n" not in str(error), error  # the folder or its file
        else:
            event("read")
            assert volume.data.ndim == 3
        assert tracemalloc.get_traced_memory()[1] < 2 * DECLARED_LIMIT
    finally:
        tracemalloc.stop()
        set_memory_limit(None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(1, 8),
    sizes,
    sizes,
    st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
    st.sampled_from([1, 8, 5, 32773]),
    st.booleans(),
)
def test_tiff_headers_declaring_any_size_are_read_or_refused(
    tmp_path_factory, pages, height, width, dtype, compression, short_strip
):
    from bad_files import declared_tiff

    # a real stream of one page of zeros when that is small, else a few bytes that claim to be the page
    real = height * width * np.dtype(dtype).itemsize <= 2**20 and compression == 8 and not short_strip
    path = declared_tiff(
        tmp_path_factory.mktemp("tiff") / "scan.tif",
        (pages, height, width),
        dtype,
        strip=None if real else b"x\x9c\x03\x00" * 4,
        compression=compression,
    )
    _read_within_budget(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes, sizes, st.sampled_from(PNG_MODES), st.integers(1, 3))
def test_png_headers_declaring_any_size_are_read_or_refused(tmp_path_factory, height, width, mode, count):
    from bad_files import declared_png

    colour_type, bit_depth = mode
    small = height * width * 8 <= 2**20
    folder = tmp_path_factory.mktemp("png") / "bscans"
    folder.mkdir()
    for index in range(count):
        declared_png(folder / f"b{index}.png", height, width, colour_type, bit_depth, inflating=small)
    _read_within_budget(folder / "b0.png")
    _read_within_budget(folder)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes, sizes, sizes, st.integers(0, 2**16))
def test_heyex_vol_headers_declaring_any_size_are_read_or_refused(tmp_path_factory, width, n_bscans, depth, body):
    import struct

    header = bytearray(2048)
    header[:12] = b"HSF-OCT-103\x00"
    struct.pack_into("<III", header, 12, width, n_bscans, depth)
    path = tmp_path_factory.mktemp("vol") / "scan.vol"
    path.write_bytes(bytes(header) + bytes(body))  # zeros: as many as hypothesis chose, whatever was declared
    _read_within_budget(path)
