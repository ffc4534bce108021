"""The corpus of bad input files shared by the tests of every route (readers, CLI, napari): each entry is
(file name, how to make it in a folder, a phrase the message must contain). Generated, never committed."""

import hashlib

import imageio.v3 as iio
import numpy as np
import tifffile


def tiff(path, data, **kwargs):
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
    ("rgb.tif", lambda p: tiff(p, np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 200, 90)]), photometric="rgb"),
     "colour"),
    ("rgb.png", _colour_png, "colour"),
    ("four_d.tif", lambda p: tiff(p, np.ones((2, 3, 16, 16), np.uint8), imagej=True, metadata={"axes": "TZYX"}),
     "4 dimensions"),
    ("five_d.tif", lambda p: tiff(p, np.ones((2, 2, 3, 16, 16), np.uint8), imagej=True), "5 dimensions"),
    ("rgba.tif", lambda p: tiff(p, np.random.default_rng(0).integers(0, 255, (20, 30, 4), dtype=np.uint8),
                                photometric="rgb", extrasamples=[2]), "colour"),
    ("tiff_named.e2e", lambda p: tiff(p, np.zeros((2, 40, 40), np.uint16)), "but is a TIFF file"),
    ("tiff_named.vol", lambda p: tiff(p, np.zeros((2, 40, 40), np.uint16)), "but is a TIFF file"),
    ("mask.tif", lambda p: tiff(p, np.zeros((2, 16, 16), bool)), "true/false"),
    ("scan.xyz", lambda p: _write(p, b"123"), "extension octfluid does not read"),
    ("broken.vol", lambda p: _write(p, b"HSF-OCT-103" + bytes(100)), "could not be read"),
    ("mixed", _mixed_folder, "different sizes"),
    ("empty_folder", lambda p: p.mkdir() or p, "no B-scan images"),
    ("missing.tif", lambda p: p, "does not exist"),
]


# Files that read as a volume but cannot be segmented: refused by prediction and training, not by the readers
# (napari may still show them).
UNSEGMENTABLE = [
    ("one_pixel.tif", lambda p: tiff(p, np.array([[7]], np.uint8)), "1 x 1 pixels"),
    ("one_row.tif", lambda p: tiff(p, np.random.default_rng(0).integers(0, 255, (1, 300), dtype=np.uint8)),
     "1 x 300 pixels"),
    ("all_nan.tif", lambda p: tiff(p, np.full((2, 64, 80), np.nan, np.float32)), "no finite value"),
]


def nan_and_inf(path):
    """A float64 volume with damaged pixels: it can be segmented, with a notice."""
    data = np.random.default_rng(0).normal(100, 30, (2, 64, 80))
    data[0, :10] = np.nan
    data[1, 5] = np.inf
    return tiff(path, data)


# Unusual but valid scans: every one is segmented (and NaN/inf get a notice)
ODD_BUT_VALID = [
    ("int32.tif", lambda p: tiff(p, np.random.default_rng(0).integers(-5, 100000, (2, 64, 80)).astype(np.int32))),
    ("float64.tif", lambda p: tiff(p, np.random.default_rng(0).normal(0, 1, (2, 64, 80)))),
    ("uint16.tif", lambda p: tiff(p, np.random.default_rng(0).integers(0, 65535, (2, 64, 80)).astype(np.uint16))),
    ("constant.tif", lambda p: tiff(p, np.zeros((2, 64, 80), np.uint8))),
    ("nan_and_inf.tif", nan_and_inf),
]


def fingerprint(path):
    if not path.exists():
        return None
    if path.is_dir():
        return sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in path.iterdir())
    return hashlib.sha256(path.read_bytes()).hexdigest()
