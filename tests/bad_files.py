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
    (
        "png_named.tif",
        lambda p: _write(p, iio.imwrite("<bytes>", np.zeros((4, 4), np.uint8), extension=".png")),
        "but is a PNG file",
    ),
    (
        "rgb.tif",
        lambda p: tiff(p, np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 200, 90)]), photometric="rgb"),
        "colour",
    ),
    ("rgb.png", _colour_png, "colour"),
    (
        "four_d.tif",
        lambda p: tiff(p, np.ones((2, 3, 16, 16), np.uint8), imagej=True, metadata={"axes": "TZYX"}),
        "4 dimensions",
    ),
    ("five_d.tif", lambda p: tiff(p, np.ones((2, 2, 3, 16, 16), np.uint8), imagej=True), "5 dimensions"),
    (
        "rgba.tif",
        lambda p: tiff(
            p,
            np.random.default_rng(0).integers(0, 255, (20, 30, 4), dtype=np.uint8),
            photometric="rgb",
            extrasamples=[2],
        ),
        "colour",
    ),
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
    (
        "one_row.tif",
        lambda p: tiff(p, np.random.default_rng(0).integers(0, 255, (1, 300), dtype=np.uint8)),
        "1 x 300 pixels",
    ),
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
    ("nan_and_inf.tif", nan_and_inf),
]


def fingerprint(path):
    if not path.exists():
        return None
    if path.is_dir():
        return sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in path.iterdir())
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Hostile files for the memory budget (issue 21, findings 4 and 5): tiny on disk, huge once decoded. Written by
# hand, so that making one never allocates what it declares.

_SAMPLE_FORMAT = {"u": 1, "i": 2, "f": 3}


def zeros_stream(nbytes: int, chunk: int = 2**20) -> bytes:
    """A zlib stream that inflates to ``nbytes`` zeros, compressed a chunk at a time (never ``nbytes`` at once)."""
    import zlib

    compressor, zeros, parts = zlib.compressobj(9), bytes(min(chunk, max(nbytes, 1))), []
    for start in range(0, nbytes, chunk):
        parts.append(compressor.compress(zeros[: min(chunk, nbytes - start)]))
    return b"".join(parts) + compressor.flush()


def declared_tiff(path, shape, dtype=np.uint8, strip: bytes | None = None, compression: int = 8):
    """A little-endian TIFF whose ``pages`` each declare ``height x width`` pixels of ``dtype`` (``shape`` is
    ``(pages, height, width)`` or ``(height, width)``), every page pointing at the same strip: by default a
    zlib stream of one page of zeros (a decompression bomb), or ``strip`` as given (short or invalid data)."""
    import struct

    dtype = np.dtype(dtype)
    pages, height, width = (1, *shape) if len(shape) == 2 else shape
    page_bytes = height * width * dtype.itemsize
    if strip is None:
        strip = zeros_stream(page_bytes) if compression == 8 else bytes(16)
    strip_at, entries = 8, 11
    first_ifd = strip_at + len(strip) + (len(strip) & 1)  # IFDs start on a word boundary
    ifd_size = 2 + 12 * entries + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", first_ifd) + strip + bytes(len(strip) & 1))
    for page in range(pages):
        next_ifd = first_ifd + (page + 1) * ifd_size if page + 1 < pages else 0
        tags = [
            (256, 4, width),
            (257, 4, height),
            (258, 3, dtype.itemsize * 8),
            (259, 3, compression),
            (262, 3, 1),
            (273, 4, strip_at),
            (277, 3, 1),
            (278, 4, height),
            (279, 4, len(strip)),
            (284, 3, 1),
            (339, 3, _SAMPLE_FORMAT[dtype.kind]),
        ]
        out += struct.pack("<H", entries)
        for tag, kind, value in tags:
            out += struct.pack("<HHI", tag, kind, 1) + (
                struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            )
        out += struct.pack("<I", next_ifd)
    path.write_bytes(bytes(out))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(path, height: int, width: int, colour_type: int = 0, bit_depth: int = 8, inflating: bool = False):
    """A PNG whose header declares ``height x width`` pixels; its image data is a short stream of zeros, or with
    ``inflating`` the full image's worth of zero rows (a decompression bomb: 1 MB on disk per ~1 GB)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = 1 + width * channels * bit_depth // 8  # a filter byte, then the row
    pixels = zeros_stream(height * row) if inflating else zlib.compress(bytes(min(row, 64)))  # never `row` bytes
    palette = _png_chunk(b"PLTE", bytes(3)) if colour_type == 3 else b""  # one entry: black
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + palette
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )
    return path


def _bomb_folder(path, count=4, height=2**20, width=2**20):
    """B-scan PNGs that each declare a tebibyte of pixels, in a few hundred bytes each."""
    path.mkdir()
    for index in range(count):
        declared_png(path / f"b{index}.png", height, width)
    return path


# Files declaring far more pixels than any machine has memory for: refused before anything is decoded, whatever
# the memory limit (phrase: the budget's message).
HUGE_DECLARED = [
    ("bomb_pages.tif", lambda p: declared_tiff(p, (4096, 8192, 8192)), "memory limit"),
    ("bomb_page.tif", lambda p: declared_tiff(p, (2**20, 2**20), np.float64, strip=b"x\x9c\x03\x00"), "memory limit"),
    ("bomb.png", lambda p: declared_png(p, 2**30, 2**30, colour_type=6, bit_depth=16), "memory limit"),
    ("bomb_folder", _bomb_folder, "memory limit"),
]
BAD_INPUTS += HUGE_DECLARED


def checkpoint_with_threshold(path, threshold):
    """A sound tiny checkpoint whose stored ``decision_threshold`` is ``threshold`` (as a damaged or hand-edited
    file may hold)."""
    import torch

    from napari_octfluid.model import MODEL_CONFIGS, TransUNet, read_checkpoint, save_checkpoint

    save_checkpoint(path, TransUNet(MODEL_CONFIGS["tiny"]))
    payload = read_checkpoint(path)
    payload["decision_threshold"] = threshold
    torch.save(payload, path)
    return path


# Checkpoints with a threshold that is no fluid probability: each is refused with one line naming the file
BAD_CHECKPOINTS = [
    ("string_threshold.pt", lambda p: checkpoint_with_threshold(p, "0.5"), "not a number"),
    ("list_threshold.pt", lambda p: checkpoint_with_threshold(p, [0.5, 0.6]), "not a number"),
    ("bool_threshold.pt", lambda p: checkpoint_with_threshold(p, True), "not a number"),
    ("nan_threshold.pt", lambda p: checkpoint_with_threshold(p, float("nan")), "between 0 and 1"),
    ("negative_threshold.pt", lambda p: checkpoint_with_threshold(p, -0.2), "between 0 and 1"),
]


def inflating_checkpoint(path, inflated_bytes: int):
    """An octfluid checkpoint of the tiny model with one extra tensor of ``inflated_bytes`` whose zip member is
    deflated zeros: a few kilobytes per megabyte on disk, all of it allocated by ``torch.load``. Made without
    holding what it declares: torch writes the tensors' space unfilled (a sparse file), then each member is
    copied into the final archive a megabyte at a time. (Every weight is zero: loading is all it is for.)"""
    import re
    import zipfile

    import torch

    from napari_octfluid.model import MODEL_CONFIGS, TransUNet

    model = TransUNet(MODEL_CONFIGS["tiny"])
    payload = {
        "format": "octfluid-checkpoint",
        "version": 1,
        "decision_threshold": None,
        "model_config": model.config.to_dict(),
        "model_state": model.state_dict(),
        "padding": torch.empty(inflated_bytes, dtype=torch.uint8),
    }  # never touched: costs no memory
    sparse = path.with_name("sparse_" + path.name)
    with torch.serialization.skip_data():
        torch.save(payload, sparse)
    zeros = bytes(2**20)
    with zipfile.ZipFile(sparse) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in original.infolist():
            if not re.search(r"/data/\d+$", member.filename):  # the pickle and torch's small records
                bomb.writestr(member.filename, original.read(member), zipfile.ZIP_DEFLATED)
                continue
            with bomb.open(member.filename, "w", force_zip64=True) as target:  # a tensor's space: zeros
                for start in range(0, member.file_size, len(zeros)):
                    target.write(zeros[: min(len(zeros), member.file_size - start)])
    sparse.unlink()
    return path


def checkpoint_with(path, config_changes=None, state_change=None):
    """The tiny model's checkpoint with its model config changed (``config_changes``, raw values as a file could
    hold them) or its weights changed (``state_change(state)``, in place), saved without any check."""
    import torch

    from napari_octfluid.model import MODEL_CONFIGS, TransUNet

    model = TransUNet(MODEL_CONFIGS["tiny"])
    payload = {
        "format": "octfluid-checkpoint",
        "version": 1,
        "decision_threshold": None,
        "model_config": {**model.config.to_dict(), **(config_changes or {})},
        "model_state": {key: value.clone() for key, value in model.state_dict().items()},
    }
    if state_change is not None:
        state_change(payload["model_state"])
    torch.save(payload, path)
    return path


# A model config for a TransUNet of 43.6 billion parameters (174 GB of float32), in a file of a few kilobytes
GIGANTIC_CONFIG = {
    "filter_num": [4096] * 8,
    "stack_num_down": 16,
    "stack_num_up": 16,
    "embed_dim": 4096,
    "num_heads": 16,
    "num_mlp": 4096,
    "num_transformer": 16,
    "pos_grid": [1024, 1024],
}
