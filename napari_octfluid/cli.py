"""The ``octfluid`` command: the same core as the napari plugin, for batch work without a screen."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from . import __version__

HEADLESS_RESULTS = Path("octfluid-results")


class CommandError(Exception):
    """A problem the user can fix, reported as one line on stderr with a non-zero exit."""


def _spacing_text(spacing_mm) -> str:
    return ", ".join("unknown" if s is None else f"{s * 1e3:.4g} um" for s in spacing_mm)


def cmd_info(args: argparse.Namespace) -> int:
    from .io import read_volume

    volume = read_volume(args.scan)
    print(f"file:      {volume.meta.get('source')}")
    print(f"format:    {volume.meta.get('format')}")
    print(f"shape:     {volume.n_bscans} B-scans x {volume.data.shape[1]} x {volume.data.shape[2]} ({volume.data.dtype})")
    print(f"spacing:   {_spacing_text(volume.spacing_mm)} (B-scan, depth, width; from {volume.meta.get('spacing_source')})")
    print(f"content:   {'labels' if volume.is_labels else 'OCT intensities'}")
    for key in ("laterality", "device", "acquired"):
        if key in volume.meta:
            print(f"{key + ':':<10} {volume.meta[key]}")
    return 0


def _progress_line(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    end = "\n" if done == total else ""
    print(f"\r{done}/{total} B-scans ({rate:.1f}/s)", end=end, file=sys.stderr, flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference import PredictNotice, PredictProgress, PredictStarted, predict
    from .io import read_volume, write_tiff
    from .model import load_model
    from .weights import NO_WEIGHTS_MESSAGE, default_weights_path

    volume = read_volume(args.input)  # a bad input is reported before anything else
    weights = args.weights or default_weights_path()
    if weights is None:
        raise CommandError(NO_WEIGHTS_MESSAGE)
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    model, _ = load_model(weights)
    events = predict(volume.data, model, device=args.device, batch_size=args.batch_size)
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            result = stop.value
            break
        if isinstance(event, PredictStarted):
            print(f"octfluid predict: {event.n_bscans} B-scans on {event.device}, batch {event.batch_size}",
                  file=sys.stderr)
        elif isinstance(event, PredictProgress):
            _progress_line(event.done, event.total, event.elapsed_s)
        elif isinstance(event, PredictNotice):
            print(f"octfluid predict: {event.message}", file=sys.stderr)
    meta = {**volume.meta, "model": str(weights)}
    write_tiff(args.output, volume.as_source_shape(result.labels), volume.spacing_mm, meta, kind="labels")
    if args.probabilities:
        write_tiff(args.probabilities, volume.as_source_shape(result.fluid_probability), volume.spacing_mm, meta,
                   kind="image")
    from .quantify import fluid_pixels_per_bscan

    per_bscan = fluid_pixels_per_bscan(result.labels)
    print(f"wrote {args.output}: fluid in {int((per_bscan > 0).sum())} of {volume.n_bscans} B-scans, "
          f"{int(per_bscan.sum())} pixels ({result.seconds:.1f} s on {result.device})")
    return 0


def cmd_quantify(args: argparse.Namespace) -> int:
    from .io import read_volume
    from .quantify import summarize_fluid, write_summary_csv

    volume = read_volume(args.labels)
    if not volume.is_labels:
        raise CommandError(f"{Path(args.labels).name} holds OCT intensities, not labels: give the fluid mask file.")
    spacing = tuple(args.spacing) if args.spacing else volume.spacing_mm
    summary = summarize_fluid(volume.data, spacing)
    print(f"B-scans with fluid: {int((summary.pixels_per_bscan > 0).sum())} of {volume.n_bscans}")
    print(f"fluid pixels:       {summary.total_pixels}")
    if summary.area_mm2_per_bscan is None:
        print("fluid area:         spacing unknown (give --spacing Z Y X in mm)")
    else:
        print(f"fluid area:         {summary.area_mm2_per_bscan.sum():.5f} mm^2 (sum over B-scans)")
    if summary.volume_mm3 is None:
        print("fluid volume:       spacing unknown (give --spacing Z Y X in mm)")
    else:
        print(f"fluid volume:       {summary.volume_mm3:.5f} mm^3 = {summary.volume_nl:.2f} nL")
    if args.csv:
        print(f"wrote {write_summary_csv(args.csv, summary)}")
    return 0


def cmd_not_yet(args: argparse.Namespace) -> int:
    raise CommandError(f"'octfluid {args.command}' is not available in this version of octfluid yet.")


def cmd_demo(args: argparse.Namespace) -> int:
    """Headless tour of the sample: what the reader sees, the expert fluid quantified, an overlay picture."""
    import imageio.v3 as iio

    from ._sample_data import SAMPLE_MASK, SAMPLE_SCAN
    from .io import read_volume
    from .overlay import overlay_rgb
    from .quantify import summarize_fluid, write_summary_csv

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd_info(argparse.Namespace(scan=SAMPLE_SCAN))
    scan, mask = read_volume(SAMPLE_SCAN), read_volume(SAMPLE_MASK)
    summary = summarize_fluid(mask.data, mask.spacing_mm)
    write_summary_csv(out / "sample_expert_fluid.csv", summary)
    most_fluid = int(summary.pixels_per_bscan.argmax())
    iio.imwrite(out / f"sample_bscan{most_fluid:02d}_expert_fluid.png", overlay_rgb(scan.data[most_fluid], mask.data[most_fluid]))
    print(f"Results written to {out.resolve()}/ (fluid per B-scan as CSV, B-scan {most_fluid} with the expert's fluid as PNG)")
    return 0


def screen_available() -> bool:
    """Whether Qt can open a window here, asked in a child process: Qt aborts the process that fails."""
    probe = "from qtpy.QtWidgets import QApplication; QApplication([])"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cmd_view(args: argparse.Namespace) -> int:
    if not screen_available():
        print(f"No screen available for napari: running the headless demo instead, results in {HEADLESS_RESULTS}/")
        return cmd_demo(argparse.Namespace(out=HEADLESS_RESULTS))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="octfluid", description=__doc__)
    parser.add_argument("--version", action="version", version=f"octfluid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="show what octfluid reads from a scan: shape, spacing, metadata")
    info.add_argument("scan")
    info.set_defaults(run=cmd_info)

    predict = sub.add_parser("predict", help="segment fluid in a scan into a uint8 TIFF mask")
    predict.add_argument("input")
    predict.add_argument("-o", "--output", required=True)
    predict.add_argument("--weights")
    predict.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    predict.add_argument("--batch-size", type=int)
    predict.add_argument("--probabilities")
    predict.set_defaults(run=cmd_predict)

    for name, text in (("train", "fine-tune the model on corrected labels"),
                       ("evaluate", "compare predictions with expert labels (Dice, Jaccard)")):
        sub.add_parser(name, help=f"{text} (not in this version yet)").set_defaults(run=cmd_not_yet)

    quantify = sub.add_parser("quantify", help="fluid area per B-scan and fluid volume from a labels file")
    quantify.add_argument("labels")
    quantify.add_argument("--spacing", nargs=3, type=float, metavar=("Z", "Y", "X"),
                          help="spacing in mm between B-scans, along depth and along width")
    quantify.add_argument("--csv", help="write fluid per B-scan and totals to this CSV file")
    quantify.set_defaults(run=cmd_quantify)

    view = sub.add_parser("view", help="open napari with a scan (default: the sample) and octfluid's widgets")
    view.add_argument("scan", nargs="?")
    view.set_defaults(run=cmd_view)

    demo = sub.add_parser("demo", help="headless tour of the bundled sample, writing results to a folder")
    demo.add_argument("--out", default=str(HEADLESS_RESULTS))
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .io import OctReadError
    from .quantify import SpacingUnknownError

    user_errors: tuple[type[BaseException], ...] = (CommandError, OctReadError, SpacingUnknownError,
                                                    FileNotFoundError, IsADirectoryError, PermissionError, MemoryError)
    if args.command in ("predict", "train", "evaluate"):  # only these need torch; quantify/info stay light
        from .devices import DeviceUnavailableError
        from .model import CheckpointError

        user_errors += (CheckpointError, DeviceUnavailableError)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"octfluid {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except user_errors as exc:
        print(f"octfluid {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
