"""Every bad input ends in an OctReadError that names the file and the problem, and leaves the file as it was."""

import hashlib

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_octfluid.io import OctReadError, read_volume


def _tiff(path, data, **kwargs):
    tifffile.imwrite(path, data, **kwargs)
    return path


def _truncated(path, keep=0.4, **kwargs):
    full = path.with_name("full_" + path.name)
    tifffile.imwrite(full, np.random.default_rng(0).integers(0, 255, (6, 40, 50), dtype=np.uint8), **kwargs)
    path.write_bytes(full.read_bytes()[: int(full.stat().st_size * keep)])
    return path


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _colour_png(path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red: a real colour picture, not grey saved as RGB
    iio.imwrite(path, rgb)
    return path


def _mixed_folder(path):
    path.mkdir()
    iio.imwrite(path / "b1.png", np.zeros((20, 30), np.uint8))
    iio.imwrite(path / "b2.png", np.zeros((21, 30), np.uint8))
    return path


# (name, how to make it, a phrase the message must contain)
BAD_INPUTS = [
    ("empty.tif", lambda p: _write(p, b""), "empty"),
    ("truncated.tif", lambda p: _truncated(p, compression="zlib"), "truncated"),
    ("truncated_plain.tif", lambda p: _truncated(p), "truncated"),
    ("truncated_imagej.tif", lambda p: _truncated(p, imagej=True), "truncated"),
    ("corrupt.tif", lambda p: _write(p, b"II*\x00" + bytes(range(256)) * 8), "corrupt"),
    ("garbage.tif", lambda p: _write(p, b"\x00\x01 not a tiff at all" * 10), "does not start like one"),
    ("png_named.tif", lambda p: _write(p, iio.imwrite("<bytes>", np.zeros((4, 4), np.uint8), extension=".png")),
     "but is a PNG file"),
    ("rgb.tif", lambda p: _tiff(p, np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 200, 90)]), photometric="rgb"),
     "colour"),
    ("rgb.png", _colour_png, "colour"),
    ("four_d.tif", lambda p: _tiff(p, np.ones((2, 3, 16, 16), np.uint8), imagej=True, metadata={"axes": "TZYX"}),
     "4 dimensions"),
    ("mask.tif", lambda p: _tiff(p, np.zeros((2, 16, 16), bool)), "true/false"),
    ("scan.xyz", lambda p: _write(p, b"123"), "extension octfluid does not read"),
    ("broken.vol", lambda p: _write(p, b"HSF-OCT-103" + bytes(100)), "could not be read"),
    ("mixed", _mixed_folder, "different sizes"),
    ("empty_folder", lambda p: p.mkdir() or p, "no B-scan images"),
    ("missing.tif", lambda p: p, "does not exist"),
]


@pytest.mark.parametrize("name, make, phrase", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_message(tmp_path, name, make, phrase):
    path = make(tmp_path / name)
    before = _fingerprint(path)
    with pytest.raises(OctReadError) as caught:
        read_volume(path)
    message = str(caught.value)
    assert message.startswith(path.name + ":"), message
    assert phrase in message, message
    assert _fingerprint(path) == before  # reading never changes the user's file


def test_singleton_axes_are_squeezed_not_refused(tmp_path):
    path = _tiff(tmp_path / "tzcyx.tif", np.ones((1, 3, 1, 16, 16), np.uint8), imagej=True)
    assert read_volume(path).data.shape == (3, 16, 16)


def test_grey_saved_as_rgb_tiff_is_accepted(tmp_path):
    grey = np.arange(480, dtype=np.uint8).reshape(16, 30)
    path = _tiff(tmp_path / "grey_rgb.tif", np.dstack([grey] * 3), photometric="rgb")
    np.testing.assert_array_equal(read_volume(path).data[0], grey)


def _fingerprint(path):
    if not path.exists():
        return None
    if path.is_dir():
        return sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in path.iterdir())
    return hashlib.sha256(path.read_bytes()).hexdigest()
