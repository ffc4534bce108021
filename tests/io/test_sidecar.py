"""The corrections sidecar: round trip, atomic writes, and refusal of damaged or foreign files."""

import os

import numpy as np
import pytest

from napari_octfluid.io.sidecar import SidecarError, load_sidecar, save_sidecar, sidecar_path
from napari_octfluid.review import ReviewState, Status


def corrected_state():
    labels = np.zeros((4, 16, 16), np.uint8)
    labels[2, 3:9, 4:12] = 1
    state = ReviewState.start(labels, model="octfluid_default.pt", uncertainty=np.array([0.1, 0.2, 0.3, 0.4]))
    labels[1, 0:2, 0:2] = 1
    state.accept(3)
    state.update(labels)
    return labels, state


def test_round_trip_restores_labels_statuses_model_and_uncertainty(tmp_path):
    labels, state = corrected_state()
    path = save_sidecar(sidecar_path(tmp_path / "scan.tif"), labels, state)
    assert path.name == "scan.tif.octfluid.npz"
    restored, restored_state = load_sidecar(path, expected_shape=labels.shape)
    np.testing.assert_array_equal(restored, labels)
    assert restored_state.statuses().tolist() == [
        Status.UNREVIEWED,
        Status.CORRECTED,
        Status.UNREVIEWED,
        Status.ACCEPTED,
    ]
    assert restored_state.model == "octfluid_default.pt"
    np.testing.assert_allclose(restored_state.uncertainty, [0.1, 0.2, 0.3, 0.4])


def test_a_failed_write_leaves_the_previous_sidecar_whole(tmp_path, monkeypatch):
    labels, state = corrected_state()
    path = save_sidecar(tmp_path / "scan.tif.octfluid.npz", labels, state)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError):
        save_sidecar(path, labels * 0, state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_sidecar_is_refused_and_left_in_place(tmp_path, damage):
    labels, state = corrected_state()
    path = save_sidecar(tmp_path / "s.octfluid.npz", labels, state)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(200), "empty": b""}[damage])
    with pytest.raises(SidecarError, match="damaged"):
        load_sidecar(path)
    assert path.exists()


def test_a_sidecar_of_another_scan_is_refused(tmp_path):
    labels, state = corrected_state()
    path = save_sidecar(tmp_path / "s.octfluid.npz", labels, state)
    with pytest.raises(SidecarError, match="another scan"):
        load_sidecar(path, expected_shape=(5, 16, 16))


def test_a_pickle_inside_is_never_executed(tmp_path):
    path = tmp_path / "evil.octfluid.npz"
    np.savez(path, format_version=np.array(1), labels=np.array([object()], dtype=object))
    with pytest.raises(SidecarError):
        load_sidecar(path)
