"""Killing a training run (SIGKILL) between or during checkpoint writes leaves the last checkpoint whole."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from napari_octfluid.io import write_tiff
from napari_octfluid.model import load_model


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_training_leaves_a_loadable_checkpoint(tmp_path, train_argv):
    rng = np.random.default_rng(0)
    images = rng.integers(100, 200, (3, 64, 64), dtype=np.uint8)
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[:, 20:36, 24:44] = 1
    images[labels == 1] = 30
    write_tiff(tmp_path / "img.tif", images, kind="image")
    write_tiff(tmp_path / "lab.tif", labels)
    out = tmp_path / "run"
    options = {"model": "tiny", "epochs": 10000, "steps_per_epoch": 1, "batch_size": 1, "out": out}
    command = train_argv(tmp_path / "img.tif", tmp_path / "lab.tif", **options)
    process = subprocess.Popen(
        [sys.executable, "-m", "napari_octfluid.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (out / "last.pt").exists(), "no checkpoint was written in time"
        time.sleep(1.5)  # a checkpoint is rewritten every epoch: the kill lands between or inside writes
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    model, payload = load_model(out / "last.pt")
    assert payload["epoch"] >= 1 and model.config.num_classes == 2
    load_model(out / "best.pt")
    assert all(p.suffix in (".pt", ".tmp") for p in out.iterdir())  # at most a temporary file from the killed write
