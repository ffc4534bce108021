"""``octfluid demo``: a headless tour of the bundled sample (what ``make run`` does without a screen)."""

from __future__ import annotations

import argparse
from pathlib import Path

HEADLESS_RESULTS = Path("octfluid-results")


def add_parser(sub) -> None:
    parser = sub.add_parser("demo", help="headless tour of the bundled sample, writing results to a folder")
    parser.add_argument("--out", default=str(HEADLESS_RESULTS))
    parser.set_defaults(run=run)


def write_png(path: Path, rgb) -> None:
    import imageio.v3 as iio

    from .._atomic import atomic_path

    with atomic_path(path) as temporary:
        iio.imwrite(temporary, rgb, extension=".png")  # the temporary name says nothing of the format


def run(args: argparse.Namespace) -> int:
    """What the reader sees, the expert fluid quantified, the model's prediction, overlay pictures."""
    from .. import weights
    from .._sample_data import SAMPLE_MASK, SAMPLE_SCAN
    from ..io import read_volume
    from ..outputs import check_outputs
    from ..overlay import overlay_rgb
    from ..quantify import summarize_fluid, write_summary_csv
    from . import info, predict

    out = Path(args.out)
    check_outputs(folders={"--out": out}, inputs=[SAMPLE_SCAN, SAMPLE_MASK])
    out.mkdir(parents=True, exist_ok=True)
    info.run(argparse.Namespace(scan=SAMPLE_SCAN))
    scan, mask = read_volume(SAMPLE_SCAN), read_volume(SAMPLE_MASK)
    summary = summarize_fluid(mask.data, mask.spacing_mm)
    write_summary_csv(out / "sample_expert_fluid.csv", summary)
    most_fluid = int(summary.pixels_per_bscan.argmax())
    write_png(
        out / f"sample_bscan{most_fluid:02d}_expert_fluid.png",
        overlay_rgb(scan.data[most_fluid], mask.data[most_fluid]),
    )
    if weights.default_weights_path() is not None:
        predicted = out / "sample_predicted_fluid.tif"
        predict.run(
            argparse.Namespace(
                input=str(SAMPLE_SCAN),
                output=str(predicted),
                weights=None,
                device="auto",
                batch_size=None,
                probabilities=None,
            )
        )
        labels = read_volume(predicted).data
        write_summary_csv(out / "sample_predicted_fluid.csv", summarize_fluid(labels, scan.spacing_mm))
        write_png(
            out / f"sample_bscan{most_fluid:02d}_predicted_fluid.png",
            overlay_rgb(scan.data[most_fluid], labels[most_fluid]),
        )
    else:
        print("(no trained weights installed: the demo shows the expert's mask only)")
    print(f"Results written to {out.resolve()}/ (fluid per B-scan as CSV, B-scan {most_fluid} with fluid as PNG)")
    return 0
