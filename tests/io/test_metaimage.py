"""MetaImage (.mhd + .raw, .mha), as the RETOUCH challenge ships its OCT volumes and reference labels: the header is
written here by hand, as ITK's MetaIO writes it (x y z order: width, depth, B-scans)."""

import zlib

import numpy as np
import pytest

from napari_octfluid.io import OctReadError, read_volume
from napari_octfluid.io.errors import ScanTooLargeError
from napari_octfluid.memory import set_memory_limit

# a RETOUCH Cirrus-like volume, shrunk: 3 B-scans of 10 (depth) x 12 (width)
VOLUME = np.random.default_rng(1).integers(0, 60000, (3, 10, 12)).astype(np.uint16)
SPACING_XYZ = (0.0117188, 0.00195312, 0.046875)  # width, depth, B-scan (mm), as RETOUCH's Cirrus headers


def header_text(array, element_type, spacing_xyz=SPACING_XYZ, data_file="LOCAL", **extra) -> str:
    sizes = " ".join(str(size) for size in reversed(array.shape))
    lines = [
        "ObjectType = Image",
        f"NDims = {array.ndim}",
        "BinaryData = True",
        f"BinaryDataByteOrderMSB = {extra.pop('msb', False)}",
        f"CompressedData = {extra.pop('compressed', False)}",
        *[f"{key} = {value}" for key, value in extra.items()],
        "TransformMatrix = 1 0 0 0 1 0 0 0 1" if array.ndim == 3 else "TransformMatrix = 1 0 0 1",
        f"ElementSpacing = {' '.join(str(s) for s in spacing_xyz[: array.ndim])}",
        f"DimSize = {sizes}",
        f"ElementType = {element_type}",
        f"ElementDataFile = {data_file}",
    ]
    return "\n".join(lines) + "\n"


def write_mhd(folder, name, array, element_type, **extra):
    raw = folder / f"{name}.raw"
    raw.write_bytes(array.tobytes())
    header = folder / f"{name}.mhd"
    header.write_text(header_text(array, element_type, data_file=raw.name, **extra))
    return header


@pytest.fixture
def memory_limit():
    yield set_memory_limit
    set_memory_limit(None)


def test_mhd_and_raw_with_spacing_in_bscan_depth_width_order(tmp_path):
    volume = read_volume(write_mhd(tmp_path, "oct", VOLUME, "MET_USHORT"))
    np.testing.assert_array_equal(volume.data, VOLUME)
    assert volume.spacing_mm == pytest.approx((0.046875, 0.00195312, 0.0117188))
    assert volume.meta["format"] == "MetaImage" and "ElementSpacing" in volume.meta["spacing_source"]
    assert not volume.is_labels


def test_retouch_reference_labels_read_as_labels(tmp_path):
    labels = np.zeros((3, 10, 12), np.uint8)
    labels[1, 2:5, 3:7] = 1  # intraretinal fluid
    labels[2, 6:8, 1:4] = 2  # subretinal fluid
    volume = read_volume(write_mhd(tmp_path, "reference", labels, "MET_UCHAR"))
    np.testing.assert_array_equal(volume.data, labels)
    assert volume.is_labels


def test_mha_local_big_endian_short(tmp_path):
    signed = (VOLUME.astype(np.int32) - 30000).astype(np.int16)
    path = tmp_path / "scan.mha"
    path.write_bytes(header_text(signed, "MET_SHORT", msb=True).encode() + signed.astype(">i2").tobytes())
    volume = read_volume(path)
    assert volume.data.dtype == np.int16 and volume.data.dtype.isnative
    np.testing.assert_array_equal(volume.data, signed)


def test_mha_compressed_float(tmp_path):
    floats = VOLUME.astype(np.float32) / 7
    compressed = zlib.compress(floats.tobytes())
    text = header_text(floats, "MET_FLOAT", compressed=True, CompressedDataSize=len(compressed))
    path = tmp_path / "scan.mha"
    path.write_bytes(text.encode() + compressed)
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, floats)
    assert volume.data.flags.writeable  # napari paints into labels read this way


def test_two_dimensional_bscan(tmp_path):
    volume = read_volume(write_mhd(tmp_path, "line", VOLUME[0].astype(np.uint8), "MET_UCHAR"))
    assert volume.data.shape == (1, 10, 12) and volume.source_ndim == 2
    assert volume.spacing_mm == pytest.approx((None, 0.00195312, 0.0117188))


def test_header_size_minus_one_reads_the_end_of_the_file(tmp_path):
    raw = tmp_path / "scan.raw"
    raw.write_bytes(b"vendor preamble" + VOLUME.tobytes())
    header = tmp_path / "scan.mhd"
    header.write_text(header_text(VOLUME, "MET_USHORT", data_file="scan.raw", HeaderSize=-1))
    np.testing.assert_array_equal(read_volume(header).data, VOLUME)


def test_no_spacing_is_unknown(tmp_path):
    path = tmp_path / "bare.mhd"
    (tmp_path / "bare.raw").write_bytes(VOLUME.tobytes())
    path.write_text("NDims = 3\nDimSize = 12 10 3\nElementType = MET_USHORT\nElementDataFile = bare.raw\n")
    volume = read_volume(path)
    assert volume.spacing_mm == (None, None, None) and volume.meta["spacing_source"] == "unknown"


@pytest.mark.parametrize(
    "damage, phrase",
    [
        (lambda folder: (folder / "oct.raw").write_bytes(VOLUME.tobytes()[:-10]), "it is truncated"),
        (lambda folder: (folder / "oct.raw").unlink(), "keeps its pixels in oct.raw, which is missing"),
        (
            lambda folder: (folder / "oct.mhd").write_text(
                (folder / "oct.mhd").read_text().replace("MET_USHORT", "MET_FLOAT_MATRIX")
            ),
            "ElementType MET_FLOAT_MATRIX",
        ),
        (lambda folder: (folder / "oct.mhd").write_text("ObjectType = Image\nNDims = 3\n"), "no ElementDataFile"),
        (
            lambda folder: (folder / "oct.mhd").write_text(
                (folder / "oct.mhd").read_text().replace("ElementDataFile = oct.raw", "ElementDataFile = LIST")
            ),
            "several files",
        ),
    ],
    ids=["truncated", "missing raw", "unknown type", "no data file", "list of files"],
)
def test_bad_metaimage_gets_one_line(tmp_path, damage, phrase):
    path = write_mhd(tmp_path, "oct", VOLUME, "MET_USHORT")
    damage(tmp_path)
    with pytest.raises(OctReadError) as caught:
        read_volume(path)
    assert str(caught.value).startswith("oct.mhd: ") and phrase in str(caught.value)


def test_damaged_compressed_data(tmp_path):
    path = tmp_path / "broken.mha"
    path.write_bytes(header_text(VOLUME, "MET_USHORT", compressed=True).encode() + b"not zlib at all" * 5)
    with pytest.raises(OctReadError, match="broken.mha: holds compressed pixels that are damaged"):
        read_volume(path)


def test_compressed_bomb_refused_before_inflating(tmp_path, memory_limit):
    # a kilobyte of zlib under a header that declares a gigabyte: the declared size is what is checked
    compressed = zlib.compress(bytes(2**20))
    huge = np.empty((1, 1, 1), np.uint8)  # only to write the header, whose DimSize is then raised
    text = header_text(huge, "MET_UCHAR", compressed=True).replace("DimSize = 1 1 1", "DimSize = 1000 1000 1000")
    path = tmp_path / "bomb.mha"
    path.write_bytes(text.encode() + compressed)
    memory_limit("100MB")
    with pytest.raises(ScanTooLargeError, match="bomb.mha: Decompressing this scan \\(1000 x 1000 x 1000 uint8\\)"):
        read_volume(path)


def test_large_uncompressed_data_is_memory_mapped_when_over_budget(tmp_path, memory_limit):
    path = write_mhd(tmp_path, "oct", VOLUME, "MET_USHORT")
    memory_limit(100)  # smaller than the scan: mapped from disk instead of refused
    volume = read_volume(path)
    assert isinstance(volume.data.base, np.memmap) or isinstance(volume.data, np.memmap)
    np.testing.assert_array_equal(volume.data, VOLUME)
