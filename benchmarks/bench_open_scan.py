"""How long does opening a real scan with octfluid's reader stall napari, with the scan's digest computed as it
opens (``--eager``: what the reader did before issue 20) and deferred to the autosave's thread (now)? And how long
does the first autosave, which then computes the digest, stall it? Run under a screen:

    xvfb-run -a python benchmarks/bench_open_scan.py [--scan SCAN.tif] [--repeat 10] [--eager]

``--repeat N`` opens a scan N times the real one's B-scans (the real one stacked, as a 134 MB volume would be).
Prints figures (benchmarks/_stall.py); asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stall import StallMeter  # noqa: E402

import napari_octfluid._reader as reader  # noqa: E402
from napari_octfluid.io import read_volume, write_tiff  # noqa: E402
from napari_octfluid.io.scan_identity import ScanIdentity  # noqa: E402

DEFAULT_SCAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "umn_dme" / "Subject_00_images.tif"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scan", type=Path, default=DEFAULT_SCAN, help="a real OCT scan (TIFF)")
    parser.add_argument("--repeat", type=int, default=1, help="stack the scan's B-scans this many times")
    parser.add_argument("--eager", action="store_true", help="hash the scan as it opens (the reader before)")
    args = parser.parse_args()
    scan = args.scan
    folder = Path(tempfile.mkdtemp())  # no sidecar beside it, and the autosave writes here
    volume = read_volume(scan)
    pixels = np.concatenate([volume.data] * args.repeat) if args.repeat > 1 else volume.data
    scan = write_tiff(folder / f"{Path(args.scan).stem}_x{args.repeat}.tif", pixels, volume.spacing_mm, kind="image")
    if args.eager:
        reader.deferred_identity_metadata = lambda data, name: ScanIdentity.of(data, name).as_metadata()
    print(f"scan {scan.name}: {' x '.join(map(str, pixels.shape))} {pixels.dtype}, {pixels.nbytes / 1e6:.0f} MB")
    started = time.perf_counter()
    ScanIdentity.of(pixels)
    print(f"digest alone: {time.perf_counter() - started:.2f} s")
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        reader.read_scan_layers(str(scan))
        timings.append(time.perf_counter() - started)
    print(f"reader alone (read + layer data), best of 3: {min(timings):.2f} s")

    viewer = napari.Viewer()
    viewer.add_image(np.zeros((2, 8, 8), np.uint8))  # napari's first layer warms up its canvas: not the reader's
    meter = StallMeter()
    with meter.action("napari warm-up (not counted)"):
        meter.wait_until(lambda: False, timeout_s=1)
    viewer.layers.clear()
    with meter.action(f"open ({'digest as it opens' if args.eager else 'digest deferred'})"):
        viewer.open(scan, plugin="octfluid")
    metadata = {"octfluid": dict(viewer.layers[0].metadata["octfluid"])}  # as Predict copies it
    labels = viewer.add_labels(np.zeros(pixels.shape, np.uint8), name="fluid", metadata=metadata)
    from napari_octfluid._qt.review_tracking import ReviewTracker

    tracker = ReviewTracker(labels, viewer, interval_ms=60_000)
    labels.paint((0, 10, 10), 1)
    with meter.action("first autosave (computes a deferred digest)"):
        tracker.tick()  # hands the labels to the autosave thread
        meter.wait_until(lambda: tracker.last_saved is not None, timeout_s=120)
    tracker.close()
    print(meter.table())
    viewer.close()


if __name__ == "__main__":
    main()
