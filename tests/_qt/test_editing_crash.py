"""A napari session killed (SIGKILL) while the user edits loses at most the last autosave interval, and the
sidecar it leaves is never half-written."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from napari_octfluid.io.sidecar import load_sidecar, sidecar_path
from napari_octfluid.review import Status

EDITING_SESSION = textwrap.dedent("""
    import sys, time
    import numpy as np
    from qtpy.QtWidgets import QApplication
    app = QApplication([])
    from napari.layers import Labels
    from napari_octfluid._qt.review_tracking import ReviewTracker

    layer = Labels(np.zeros((6, 64, 64), np.uint8), metadata={"octfluid": {"source": sys.argv[1]}})
    tracker = ReviewTracker(layer, None, interval_ms=100)

    def run_events(seconds):
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.01)

    layer.paint((2, 20, 20), 3)
    run_events(1.0)
    print("first edit saved" if tracker.last_saved else "not saved", flush=True)
    z = 0
    while True:  # keep editing (and autosaving) until killed
        layer.paint((z % 6, 40, (7 * z) % 64), 4)
        run_events(0.02)
        z += 1
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_while_editing_keeps_the_autosaved_corrections(tmp_path):
    scan = tmp_path / "scan.tif"
    scan.write_bytes(b"not read by this test")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # nothing is drawn: no X server needed
    process = subprocess.Popen(
        [sys.executable, "-c", EDITING_SESSION, str(scan)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout.readline().strip() == "first edit saved"
        time.sleep(1.0)  # autosaves keep happening while the edits go on
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    labels, state = load_sidecar(sidecar_path(scan), expected_shape=(6, 64, 64))
    assert labels[2, 20, 20] == 3  # the edit made before the last interval is there
    assert (labels == 4).any()  # and so are later ones, up to the last autosave
    assert state.status(2) is Status.CORRECTED
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("scan.tif", "scan.tif.octfluid.npz")]
    assert all(name.endswith(".tmp") for name in leftovers)  # at most one temporary file from the killed write
