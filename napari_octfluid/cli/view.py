"""``octfluid view [SCAN]``: napari with a scan (default: the sample) and octfluid's widgets; without a screen, the
headless demo."""

from __future__ import annotations

import argparse
import subprocess
import sys

from .demo import HEADLESS_RESULTS


def add_parser(sub) -> None:
    parser = sub.add_parser("view", help="open napari with a scan (default: the sample) and octfluid's widgets")
    parser.add_argument("scan", nargs="?")
    parser.set_defaults(run=run)


def screen_available() -> bool:
    """Whether Qt can open a window here, asked in a child process: Qt aborts the process that fails."""
    probe = "from qtpy.QtWidgets import QApplication; QApplication([])"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run(args: argparse.Namespace) -> int:
    if not screen_available():
        if args.scan:  # a demo of the sample would answer another question than the one asked
            from ._common import CommandError

            raise CommandError(
                f"no screen available for napari to show {args.scan}: segment it without one with "
                f"octfluid predict {args.scan} -o MASK.tif (then octfluid quantify MASK.tif)."
            )
        print(f"No screen available for napari: running the headless demo instead, results in {HEADLESS_RESULTS}/")
        from . import demo

        return demo.run(argparse.Namespace(out=HEADLESS_RESULTS))
    import napari
    from qtpy.QtCore import QTimer

    viewer = napari.Viewer()
    viewer.window.add_plugin_dock_widget("octfluid", "octfluid")
    if args.scan:
        viewer.open(args.scan, plugin="octfluid")
    else:
        viewer.open_sample("octfluid", "duke_subject01")
    QTimer.singleShot(300, viewer.reset_view)  # fit the scan once the window has its final size
    napari.run()
    return 0
