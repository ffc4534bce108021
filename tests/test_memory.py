"""The memory budget (issue 21, finding 4): every size a file declares is checked before anything is decoded or
allocated, against a limit the user can set, with one line that says what to do.

Each hostile file here is tiny; the refusals are run under a low ``OCTFLUID_MEMORY_LIMIT`` and their allocations
traced (numpy's are visible to tracemalloc), so a check that failed would cost megabytes, never gigabytes.
"""

import re
import struct
import tracemalloc
import warnings

import numpy as np
import pytest
import tifffile
from bad_files import declared_png, declared_tiff

from napari_octfluid import memory
from napari_octfluid.io import OctReadError, read_volume
from napari_octfluid.io.errors import ScanTooLargeError
from napari_octfluid.io.tiff import DECODE_WORKERS
from napari_octfluid.memory import MemoryBudgetError, check_allocation, parse_size, set_memory_limit

MiB = 2**20


@pytest.fixture
def low_limit(monkeypatch):
    """A 4 MiB budget from the environment, as a user would set it."""
    monkeypatch.setenv(memory.ENV_VAR, "4MiB")
    set_memory_limit(None)
    yield 4 * MiB
    set_memory_limit(None)


def traced_peak(action):
    """Run ``action`` and return (its outcome or exception, the peak of memory traced meanwhile)."""
    tracemalloc.start()
    try:
        try:
            outcome = action()
        except Exception as error:  # noqa: BLE001 - the caller asserts on it
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8GiB", 8 * 2**30),
        ("8 GB", 8 * 10**9),
        ("512M", 512 * 10**6),
        ("1.5GiB", 3 * 2**29),
        ("4e9", 4 * 10**9),
        ("123", 123),
        ("2 mib", 2 * MiB),
        (4096, 4096),
    ],
)
def test_sizes_are_parsed_as_a_person_writes_them(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "0", "-1", "8 parsecs", "nan", "inf", "1e400", True, float("nan")])
def test_nonsense_sizes_are_refused(text):
    with pytest.raises(ValueError, match="not a memory size"):
        parse_size(text)


def test_the_limit_comes_from_the_caller_then_the_environment_then_available_memory(monkeypatch):
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 2**30)
    assert memory.memory_limit() == (8 * 2**30, "80% of the 10.0 GiB of memory available now")
    monkeypatch.setenv(memory.ENV_VAR, "2GiB")
    assert memory.memory_limit() == (2 * 2**30, f"set by {memory.ENV_VAR}")
    set_memory_limit("1GiB")
    try:
        assert memory.memory_limit()[0] == 2**30
    finally:
        set_memory_limit(None)
    assert memory.memory_limit()[0] == 2 * 2**30


def test_unknown_available_memory_refuses_nothing(monkeypatch):
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    check_allocation(2**50, "anything")


def test_available_memory_is_read_from_this_machine():
    available = memory.available_memory()
    assert available is None or available > 0


def test_meminfo_is_parsed(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683652 kB\nMemFree:        22098276 kB\nMemAvailable:   23754620 kB\n")
    assert memory._meminfo_available(meminfo) == 23754620 * 1024
    assert memory._meminfo_available(tmp_path / "missing") is None


def test_a_bad_limit_setting_is_one_clear_error_not_ignored(monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "lots")
    with pytest.raises(MemoryBudgetError, match=f"^{memory.ENV_VAR}: 'lots' is not a memory size"):
        check_allocation(1, "anything")


def test_the_refusal_says_what_needs_how_much_and_what_to_do(low_limit):
    with pytest.raises(MemoryBudgetError) as caught:
        check_allocation(10 * MiB, "Decoding this scan (10 x 1024 x 1024 uint8)")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "Decoding this scan (10 x 1024 x 1024 uint8) needs 10.0 MiB, more than octfluid's "
        f"memory limit of 4.0 MiB (set by {memory.ENV_VAR})."
    )
    assert "Crop or subsample the scan" in message and f"{memory.ENV_VAR}=1GiB" in message
    assert caught.value.needed == 10 * MiB and caught.value.limit == 4 * MiB
    check_allocation(4 * MiB, "just fits")


def test_an_impossible_size_is_called_a_bad_header_not_a_limit_to_raise(low_limit):
    with pytest.raises(MemoryBudgetError, match="No machine has that much memory") as caught:
        check_allocation(2**70, "Decoding this scan")
    assert memory.ENV_VAR + "=" not in str(caught.value)


# --- TIFF ----------------------------------------------------------------------------------------------------


def test_compressed_tiff_bomb_is_refused_before_decoding(tmp_path, low_limit):
    # 64 pages of 1024 x 1024 uint8 zeros: 64 MiB declared, a few kilobytes on disk
    path = declared_tiff(tmp_path / "bomb.tif", (64, 1024, 1024))
    assert path.stat().st_size < 100_000
    error, peak = traced_peak(lambda: read_volume(path))
    assert isinstance(error, ScanTooLargeError) and isinstance(error, OctReadError) and isinstance(error, MemoryError)
    assert str(error).startswith("bomb.tif: Decoding this scan (64 x 1024 x 1024 uint8) needs 6")
    assert peak < low_limit  # the 64 MiB were never asked for


def test_tiff_declaring_more_than_numpy_can_give_is_refused_not_a_numpy_memory_error(tmp_path):
    path = declared_tiff(tmp_path / "huge.tif", (2**20, 2**20), np.float64, strip=b"x\x9c\x03\x00")
    with pytest.raises(
        ScanTooLargeError,
        match=r"^huge.tif: Decoding this scan \(1048576 x 1048576 float64\) "
        rf"needs {8 * (DECODE_WORKERS + 2)}.0 TiB",
    ):  # the pixels (8 TiB), a strip (here the whole image) for each decoding thread, and one read
        read_volume(path)


def test_a_tiff_within_the_limit_is_still_read(tmp_path, low_limit):
    path = declared_tiff(tmp_path / "small.tif", (3, 100, 200), np.uint16)
    volume = read_volume(path)
    assert volume.data.shape == (3, 100, 200) and not volume.data.any()


def test_an_uncompressed_tiff_over_the_limit_is_memory_mapped_not_refused(tmp_path, low_limit):
    data = np.random.default_rng(0).integers(0, 255, (9, 512, 1024), dtype=np.uint8)  # 4.5 MiB
    tifffile.imwrite(tmp_path / "plain.tif", data)
    volume, peak = traced_peak(lambda: read_volume(tmp_path / "plain.tif"))
    assert isinstance(volume.data, np.memmap) or isinstance(volume.data.base, np.memmap)
    np.testing.assert_array_equal(volume.data[5], data[5])
    assert peak < MiB


def test_an_uncompressed_tiff_declaring_more_than_the_file_holds_is_called_truncated(tmp_path):
    path = declared_tiff(tmp_path / "short.tif", (4000, 4000), np.uint16, compression=1)
    with pytest.raises(OctReadError, match=r"^short.tif: declares 4000 x 4000 uint16 pixels .* it is truncated"):
        read_volume(path)


# --- PNG and folders ------------------------------------------------------------------------------------------


def test_png_declaring_a_huge_size_is_refused_from_its_header(tmp_path, low_limit):
    path = declared_png(tmp_path / "bomb.png", 30000, 30000, colour_type=2)
    error, peak = traced_peak(lambda: read_volume(path))
    assert isinstance(error, ScanTooLargeError), error
    assert str(error).startswith("bomb.png: Decoding this B-scan (30000 x 30000 x 3 uint8) needs")
    assert peak < MiB


def test_folder_of_pngs_is_checked_in_total_before_any_is_decoded(tmp_path, low_limit):
    folder = tmp_path / "bscans"
    folder.mkdir()
    for index in range(12):  # each 1 MiB (3 MiB to decode): within the limit alone, 15 MiB together
        declared_png(folder / f"b{index}.png", 1024, 1024, inflating=True)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 100_000
    error, peak = traced_peak(lambda: read_volume(folder))
    assert isinstance(error, ScanTooLargeError), error
    assert str(error).startswith("bscans: Reading these 12 B-scans (up to 1024 x 1024 uint8 each) needs 15.0 MiB")
    assert peak < MiB  # no B-scan was decoded


def test_folder_is_decoded_into_one_array(tmp_path):
    for index in range(3):
        declared_png(tmp_path / f"b{index}.png", 64, 80, inflating=True)
    volume = read_volume(tmp_path)
    assert volume.data.shape == (3, 64, 80) and volume.data.base is None  # not a stack of copies


def test_pillows_bomb_warning_never_reaches_the_user(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # so a 600-pixel B-scan looks like a bomb to Pillow
    for name in ("b1.png", "b2.bmp"):
        Image.fromarray(np.full((20, 30), 7, np.uint8)).save(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert read_volume(tmp_path / "b1.png").data.shape == (1, 20, 30)
        assert read_volume(tmp_path / "b2.bmp").data.shape == (1, 20, 30)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's own setting is given back


# --- vendor files ---------------------------------------------------------------------------------------------


def _vol_header(width, n_bscans, depth, slo=(0, 0)):
    header = bytearray(2048)
    header[:12] = b"HSF-OCT-103\x00"
    struct.pack_into("<III", header, 12, width, n_bscans, depth)
    struct.pack_into("<II", header, 48, *slo)
    return bytes(header)


def test_heyex_vol_declaring_more_than_it_holds_is_refused_before_eyepy(tmp_path):
    path = tmp_path / "huge.vol"
    path.write_bytes(_vol_header(100_000, 1000, 100_000) + bytes(1000))
    with pytest.raises(
        OctReadError,
        match=r"^huge.vol: declares 1000 x 100000 x 100000 float32 pixels, more than "
        r"its 3048 bytes can hold",
    ):
        read_volume(path)


def test_heyex_vol_over_the_limit_is_refused_before_eyepy(tmp_path, low_limit):
    path = tmp_path / "big.vol"
    path.write_bytes(_vol_header(512, 8, 496) + bytes(8 * 496 * 512 * 4))  # 7.8 MiB of pixels: present, too many
    with pytest.raises(ScanTooLargeError, match=r"^big.vol: Reading this scan \(8 x 496 x 512 float32\) needs 31"):
        read_volume(path)


def test_heyex_xml_export_naming_huge_images_is_refused(tmp_path, low_limit):
    (tmp_path / "export.xml").write_text(
        "<HEDX><BODY><Patient><Study><Series><Image><ImageType><Type>OCT</Type></ImageType><ImageData>"
        "<ExamURL>C:\\export\\B1.png</ExamURL></ImageData></Image></Series></Study></Patient></BODY></HEDX>"
    )
    declared_png(tmp_path / "B1.png", 20000, 20000)
    with pytest.raises(ScanTooLargeError, match=r"^export.xml: Reading the 1 images of this export"):
        read_volume(tmp_path / "export.xml")


# --- prediction -----------------------------------------------------------------------------------------------


def test_prediction_refuses_a_volume_whose_result_would_not_fit(low_limit):
    from napari_octfluid.inference import predict
    from napari_octfluid.model import MODEL_CONFIGS, TransUNet

    volume = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (64, 1024, 1024))  # 64 MiB to look at, none held
    error, peak = traced_peak(lambda: next(predict(volume, TransUNet(MODEL_CONFIGS["tiny"]), "cpu")))
    assert isinstance(error, MemoryBudgetError), error
    # 5 bytes a voxel (320 MiB), and one B-scan's working memory
    assert re.match(r"Segmenting this scan needs 4\d\d\.\d MiB, more than octfluid's memory limit", str(error))
    assert peak < MiB


def test_prediction_estimate_counts_the_result_and_one_bscan():
    one_bscan = memory.prediction_bytes((1, 496, 768))
    assert memory.prediction_bytes((11, 496, 768)) - one_bscan == 10 * 496 * 768 * 5
    assert memory.prediction_bytes((496, 768)) == one_bscan
    assert 20 * 496 * 768 < one_bscan < 400 * 496 * 768
