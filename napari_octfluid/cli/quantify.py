"""``octfluid quantify MASK``: fluid area per B-scan, volume, and the ETDRS grid, in physical units."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import CommandError, add_spacing_option, finite_float


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
    parser.add_argument(
        "--first-bscan",
        choices=["superior", "inferior"],
        default="superior",
        help="which edge of the macula the first B-scan crosses",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read_volume
    from ..outputs import check_outputs
    from ..quantify import QuantifyProvenance, summarize_fluid, write_summary_csv
    from ..spacing import ENTERED_BY_USER, SpacingError, check_spacing

    check_outputs({"--csv": args.csv}, inputs=[args.labels, args.scan])
    volume = read_volume(args.labels)
    if not volume.is_labels:
        raise CommandError(f"{Path(args.labels).name} holds OCT intensities, not labels: give the fluid mask file.")
    if args.spacing:
        spacing, source = tuple(args.spacing), ENTERED_BY_USER  # checked by add_spacing_option
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
    sectors, fovea, laterality = _etdrs(args, volume, spacing) if args.etdrs else (None, "", "")
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
        print(f"wrote {write_summary_csv(args.csv, summary, sectors, provenance)}")
    return 0


def _etdrs(args: argparse.Namespace, labels, spacing) -> tuple[dict[str, float], str, str]:
    """Fluid per ETDRS sector, around the fovea given, detected in --scan, or at the scan centre; with the fovea and
    the eye, as the CSV records them."""
    from ..etdrs import Fovea, etdrs_fluid_volumes, find_fovea
    from ..io import read_volume
    from ..quantify import fovea_text

    if args.fovea:
        fovea = Fovea(*args.fovea, "given")
    elif args.scan:
        fovea = find_fovea(read_volume(args.scan).data, spacing)
    else:
        z, _, x = labels.data.shape
        fovea = Fovea((z - 1) / 2, (x - 1) / 2, "scan centre (give --fovea or --scan to place it)")
    laterality = args.laterality or labels.meta.get("laterality") or None
    volumes = etdrs_fluid_volumes(labels.data, spacing, fovea, laterality, args.first_bscan)
    print(
        f"ETDRS grid around the fovea at B-scan {fovea.bscan:.1f}, A-scan {fovea.column:.1f} ({fovea.how}); "
        f"eye {laterality or 'unknown'}; first B-scan {args.first_bscan}"
    )
    for sector, mm3 in volumes.items():
        print(f"  {sector:<16} {mm3:.5f} mm^3 = {mm3 * 1000:.2f} nL")
    return volumes, fovea_text(fovea.bscan, fovea.column, fovea.how), laterality or ""
