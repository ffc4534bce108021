"""Property-based tests (hypothesis): the metrics' identities on any masks, and the TIFF reader on any bytes and
any small volume."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
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
@given(st.sampled_from([np.uint8, np.uint16, np.float32]),
       st.tuples(st.integers(1, 3), st.integers(2, 20), st.integers(2, 20)), spacing, spacing, spacing, st.data())
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
