"""Sidecars nobody should trust: malformed members, huge declared sizes, pipes, links and sidecars of other scans
are refused with a SidecarError before anything large is read, and a refused sidecar is kept, never replaced."""

import os
import shutil
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sidecar_forgery import (
    HOSTILE_MEMBERS,
    SHAPE,
    npy_bytes,
    npy_header_only,
    replace_members,
    scan_pixels,
    write_sidecar_for,
)

from napari_octfluid.io.sidecar import (
    FORMAT_VERSION,
    ScanIdentity,
    SidecarError,
    file_fingerprint,
    keep_unrestored_sidecar,
    read_sidecar,
    save_sidecar,
    scan_digest,
    sidecar_path,
)
from napari_octfluid.memory import set_memory_limit
from napari_octfluid.review import ReviewState


@pytest.fixture
def scan():
    return ScanIdentity.of(scan_pixels(0), "scan.tif")


@pytest.mark.parametrize("case", list(HOSTILE_MEMBERS))
def test_a_malformed_member_is_refused_and_the_file_kept(tmp_path, scan, case):
    replacements, phrase = HOSTILE_MEMBERS[case]
    path = replace_members(write_sidecar_for(tmp_path / "scan.tif.octfluid.npz", scan_pixels(0)), **replacements(SHAPE))
    before = path.read_bytes()
    with pytest.raises(SidecarError, match=phrase) as refused:
        read_sidecar(path, scan=scan)
    assert path.name in str(refused.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("with_scan", [True, False], ids=["against_the_scan", "alone"])
def test_100_GB_declared_in_a_few_bytes_is_refused_before_anything_is_allocated(tmp_path, scan, with_scan):
    path = replace_members(
        write_sidecar_for(tmp_path / "s.octfluid.npz", scan_pixels(0)),
        labels=npy_header_only((100_000, 1000, 1000), np.uint8),
        baseline=npy_header_only((100_000, 1000, 1000), np.uint8),
    )
    tracemalloc.start()
    try:
        with pytest.raises(SidecarError, match="100.0 GB"):
            read_sidecar(path, scan=scan if with_scan else None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6  # numpy reports its allocations to tracemalloc: nothing near the declared size was asked for


def test_a_sidecar_beyond_the_memory_budget_is_refused_before_it_is_read(tmp_path, scan):
    path = write_sidecar_for(tmp_path / "scan.tif.octfluid.npz", scan_pixels(0))
    before = path.read_bytes()
    set_memory_limit(1000)  # bytes: the labels alone need 1280
    try:
        with pytest.raises(SidecarError, match="labels of scan.tif.octfluid.npz needs 1.2 KiB.*memory limit"):
            read_sidecar(path, scan=scan)
    finally:
        set_memory_limit(None)
    assert path.read_bytes() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.lists(st.integers(0, 2**40), min_size=0, max_size=4).map(tuple),
    dtype=st.sampled_from(["u1", "<u2", ">i4", "<i8", "<f8", "?", "<U8"]),
    member=st.sampled_from(["labels", "baseline", "accepted", "format_version", "model", "uncertainty"]),
)
def test_any_declared_header_is_refused_or_read_never_an_unbounded_allocation(tmp_path, shape, dtype, member):
    path = replace_members(
        write_sidecar_for(tmp_path / "h.octfluid.npz", scan_pixels(0)), **{member: npy_header_only(shape, dtype)}
    )
    try:
        read_sidecar(path)  # without a scan: the zip member's size still bounds what a header may declare
    except SidecarError:
        pass


def test_the_sidecar_of_the_right_scan_is_restored_without_a_notice(tmp_path, scan):
    path = write_sidecar_for(tmp_path / "scan.tif.octfluid.npz", scan_pixels(0))
    restored = read_sidecar(path, scan=scan)
    assert restored.notice is None and restored.labels[0, 3, 4] == 1
    assert restored.state.status(0).label == "corrected" and restored.state.status(3).label == "accepted"
    assert restored.fingerprint == file_fingerprint(path)


def test_a_sidecar_copied_from_another_scan_of_the_same_shape_is_refused_and_names_it(tmp_path, scan):
    other = write_sidecar_for(tmp_path / "other.tif.octfluid.npz", scan_pixels(1), scan_name="other.tif")
    copied = shutil.copyfile(other, tmp_path / "scan.tif.octfluid.npz")
    with pytest.raises(SidecarError, match="'other.tif'.*another scan"):
        read_sidecar(copied, scan=scan)


def test_a_renamed_scan_keeps_its_corrections(tmp_path, scan):
    path = write_sidecar_for(tmp_path / "old name.tif.octfluid.npz", scan_pixels(0), scan_name="old name.tif")
    assert read_sidecar(path, scan=ScanIdentity.of(scan_pixels(0), "new name.tif")).notice is None


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_a_symlink_to_another_scans_sidecar_is_refused(tmp_path, scan):
    other = write_sidecar_for(tmp_path / "other.tif.octfluid.npz", scan_pixels(1), scan_name="other.tif")
    link = tmp_path / "scan.tif.octfluid.npz"
    link.symlink_to(other)
    with pytest.raises(SidecarError, match="symbolic link"):
        read_sidecar(link, scan=scan)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_at_once(tmp_path, scan):
    pipe = tmp_path / "scan.tif.octfluid.npz"
    os.mkfifo(pipe)
    outcome = []
    reading = threading.Thread(target=lambda: outcome.append(_refusal(pipe, scan)), daemon=True)
    reading.start()
    reading.join(timeout=1.0)
    if reading.is_alive():  # unblock the reader so that the test run can end, then fail
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a named pipe sidecar blocked")
    assert outcome and "not a regular file" in outcome[0]


def _refusal(path, scan) -> str:
    try:
        read_sidecar(path, scan=scan)
    except SidecarError as error:
        return str(error)
    return "read"


def test_a_folder_in_place_of_the_sidecar_is_refused(tmp_path, scan):
    (tmp_path / "scan.tif.octfluid.npz").mkdir()
    with pytest.raises(SidecarError, match="not a regular file"):
        read_sidecar(tmp_path / "scan.tif.octfluid.npz", scan=scan)


def test_a_sidecar_of_the_older_unbound_format_is_restored_with_a_notice(tmp_path, scan):
    path = replace_members(
        write_sidecar_for(tmp_path / "scan.tif.octfluid.npz", scan_pixels(0), bound=False),
        format_version=npy_bytes(np.array(1)),
    )
    restored = read_sidecar(path, scan=scan)
    assert "older octfluid" in restored.notice and "not bound" in restored.notice
    assert restored.labels[0, 3, 4] == 1


def test_save_binds_the_sidecar_and_refuses_labels_that_do_not_cover_the_scan(tmp_path, scan):
    labels = np.zeros(SHAPE, np.uint8)
    path = save_sidecar(tmp_path / "s.octfluid.npz", labels, ReviewState.start(labels), scan)
    with np.load(path, allow_pickle=False) as saved:
        assert int(saved["format_version"]) == FORMAT_VERSION == 2
        assert str(saved["scan_digest"]) == scan.digest and tuple(saved["scan_shape"]) == SHAPE
        assert str(saved["scan_dtype"]) == "uint16" and str(saved["scan_name"]) == "scan.tif"
    with pytest.raises(ValueError, match="do not cover the scan"):
        save_sidecar(path, labels[:2], ReviewState.start(labels[:2]), scan)


def test_the_digest_follows_the_pixels_not_their_byte_order_or_layout():
    pixels = scan_pixels(0)
    digest = scan_digest(pixels)
    assert scan_digest(pixels.astype(">u2")) == digest
    assert scan_digest(np.asfortranarray(pixels)) == digest
    changed = pixels.copy()
    changed[3, 15, 19] ^= 1
    assert scan_digest(changed) != digest
    assert ScanIdentity.from_metadata(ScanIdentity.of(pixels, "a.tif").as_metadata()) == ScanIdentity.of(pixels)
    assert ScanIdentity.from_metadata({"shape": "garbage"}) is None and ScanIdentity.from_metadata(None) is None


def test_an_unrestored_sidecar_is_kept_aside_byte_for_byte_before_a_new_one_replaces_it(tmp_path, scan):
    path = sidecar_path(tmp_path / "scan.tif")
    path.write_bytes(b"the user's corrections, damaged")
    kept = keep_unrestored_sidecar(path, scan)
    assert kept.name.startswith("scan.tif.octfluid.npz.unreadable-") and not path.exists()
    assert kept.read_bytes() == b"the user's corrections, damaged"

    write_sidecar_for(path, scan_pixels(0))  # a valid sidecar of this scan these labels were not restored from
    assert keep_unrestored_sidecar(path, scan).name.startswith("scan.tif.octfluid.npz.previous-")

    write_sidecar_for(path, scan_pixels(0))
    assert keep_unrestored_sidecar(path, scan, restored=file_fingerprint(path)) is None  # the one restored
    assert path.exists() and keep_unrestored_sidecar(tmp_path / "none.octfluid.npz", scan) is None
    assert len(list(tmp_path.iterdir())) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_keeping_a_linked_sidecar_aside_moves_the_link_not_the_other_scans_file(tmp_path, scan):
    other = write_sidecar_for(tmp_path / "other.tif.octfluid.npz", scan_pixels(1), scan_name="other.tif")
    before = other.read_bytes()
    link = tmp_path / "scan.tif.octfluid.npz"
    link.symlink_to(other)
    kept = keep_unrestored_sidecar(link, scan)
    assert kept.is_symlink() and other.read_bytes() == before and not os.path.lexists(link)
