"""``octfluid quantify MASK``: fluid area per B-scan, volume, and the ETDRS grid, in physical units."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import (
    CommandError,
    add_overwrite_option,
    add_spacing_option,
    finite_float,
    spacing_given_over_file,
)


def add_parser(sub) -> None:
    parser = sub.add_parser("quantify", help="fluid area per B-scan and fluid volume from a labels file")
    parser.add_argument("labels")
    add_spacing_option(parser, " (e.g. 120 3.9 11.8; default: from the file)")
    parser.add_argument(
        "--csv",
        help="write fluid per B-scan, per class, totals (and ETDRS) to this CSV file, under the scan, model, spacing, "
        "fovea, eye and octfluid version they come from",
    )
    parser.add_argument("--etdrs", action="store_true", help="fluid volume per ETDRS sector (needs the spacing)")
    parser.add_argument(
        "--fovea",
        nargs=2,
        type=finite_float,
        metavar=("BSCAN", "ASCAN"),
        help="the fovea's position (default: detected in --scan, else the scan centre)",
    )
    parser.add_argument("--scan", help="the OCT scan of these labels, to detect the fovea in")
    parser.add_argument("--laterality", choices=["OD", "OS"], help="the eye (default: from the file)")
    add_overwrite_option(parser, "the --csv file")
    parser.add_argument(
        "--first-bscan",
        choices=["superior", "inferior"],
        default="superior",
        help="which edge of the macula the first B-scan crosses",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io import read_volume
    from ..outputs import check_outputs
    from ..quantify import QuantifyProvenance, summarize_fluid, write_summary_csv
    from ..spacing import ENTERED_BY_USER, SpacingError, check_spacing

    check_outputs({"--csv": args.csv}, inputs=[args.labels, args.scan], overwrite=args.overwrite)
    volume = read_volume(args.labels)
    if not volume.is_labels:
        if volume.data.dtype.kind in "ui" and set(np.unique(volume.data[:, ::4, ::4]).tolist()) <= {0, 255}:
            raise CommandError(  # the usual ImageJ or OpenCV export of a binary mask
                f"{Path(args.labels).name} holds only 0 and 255, a mask drawn as black and white: octfluid's labels "
                "are 0 for background and 1 for fluid (255 means not annotated). Save the mask with 1 for fluid."
            )
        raise CommandError(f"{Path(args.labels).name} holds OCT intensities, not labels: give the fluid mask file.")
    if args.spacing:  # checked by add_spacing_option
        spacing = spacing_given_over_file("quantify", args.spacing, volume, Path(args.labels).name)
        source = ENTERED_BY_USER
    else:
        source = f"{Path(args.labels).name} ({volume.meta.get('spacing_source', 'unknown')})"
        try:  # a file's spacing obeys the same rule as one typed in
            spacing = check_spacing(volume.spacing_mm)
        except SpacingError as error:
            raise CommandError(
                f"{Path(args.labels).name} stores an impossible spacing: {error} Give the right "
                "one with --spacing Z Y X (in micrometres)."
            ) from None
    summary = summarize_fluid(volume.data, spacing)
    print(f"B-scans with fluid: {int((summary.pixels_per_bscan > 0).sum())} of {volume.n_bscans}")
    print(f"fluid pixels:       {summary.total_pixels}")
    if summary.area_mm2_per_bscan is None:
        print("fluid area:         spacing unknown (give --spacing Z Y X in micrometres)")
    else:
        print(f"fluid area:         {summary.area_mm2_per_bscan.sum():.5f} mm^2 (sum over B-scans)")
    if summary.volume_mm3 is None:
        print("fluid volume:       spacing unknown (give --spacing Z Y X in micrometres)")
    else:
        print(f"fluid volume:       {summary.volume_mm3:.5f} mm^3 = {summary.volume_nl:.2f} nL")
        for label, pixels in summary.pixels_per_class.items():
            print(f"  class {label}:          {pixels.sum() * summary.voxel_mm3:.5f} mm^3")
    if args.fovea and not args.etdrs:
        print("octfluid quantify: notice: --fovea places the ETDRS grid: add --etdrs to get it.", file=sys.stderr)
    sectors, scanned, fovea, laterality = _etdrs(args, volume, spacing) if args.etdrs else (None, None, "", "")
    if args.csv:
        provenance = QuantifyProvenance(
            labels=str(Path(args.labels).resolve()),
            scan=str(Path(args.scan).resolve()) if args.scan else "",
            model=str(volume.meta.get("model", "")),
            spacing_mm=spacing,
            spacing_source=source,
            fovea=fovea,
            eye=laterality or args.laterality or str(volume.meta.get("laterality", "")),
        )
        print(f"wrote {write_summary_csv(args.csv, summary, sectors, provenance, scanned)}")
    return 0


def _etdrs(args: argparse.Namespace, labels, spacing) -> tuple[dict[str, float], dict[str, float], str, str]:
    """Fluid per ETDRS sector, around the fovea given, detected in --scan, or at the scan centre, and the share of
    each sector the scan covers; with the fovea and the eye, as the CSV records them."""
    from ..etdrs import Fovea, etdrs_coverage, etdrs_fluid_volumes, find_fovea
    from ..io import read_volume
    from ..quantify import fovea_text, scanned_text

    z_count, _, x_count = labels.data.shape
    if args.fovea:
        fovea = Fovea(*args.fovea, "given")
        if not (-0.5 <= fovea.bscan <= z_count - 0.5 and -0.5 <= fovea.column <= x_count - 0.5):
            raise CommandError(
                f"--fovea {fovea.bscan:g} {fovea.column:g} lies outside the scan ({z_count} B-scans, {x_count} "
                "A-scans): give the B-scan and the A-scan (column) of the fovea, counted from 0."
            )
    elif args.scan:
        scan = read_volume(args.scan).require_scan()
        if scan.data.shape != labels.data.shape:
            raise CommandError(
                f"--scan {Path(args.scan).name} has shape {scan.data.shape} but {Path(args.labels).name} has "
                f"{labels.data.shape}: give the scan the mask was made from."
            )
        fovea = find_fovea(scan.data, spacing)
    else:
        z, _, x = labels.data.shape
        fovea = Fovea((z - 1) / 2, (x - 1) / 2, "scan centre (give --fovea or --scan to place it)")
    laterality = args.laterality or labels.meta.get("laterality") or None
    volumes = etdrs_fluid_volumes(labels.data, spacing, fovea, laterality, args.first_bscan)
    scanned = etdrs_coverage((z_count, x_count), spacing, fovea, laterality, args.first_bscan)
    print(
        f"ETDRS grid around the fovea at B-scan {fovea.bscan:.1f}, A-scan {fovea.column:.1f} ({fovea.how}); "
        f"eye {laterality or 'unknown'}; first B-scan {args.first_bscan}"
    )
    for sector, mm3 in volumes.items():
        partly = scanned_text(scanned[sector]) if sector in scanned else ""
        print(f"  {sector:<16} {mm3:.5f} mm^3 = {mm3 * 1000:.2f} nL" + (f" ({partly})" if partly else ""))
    return volumes, scanned, fovea_text(fovea.bscan, fovea.column, fovea.how), laterality or ""
