"""``octfluid export MASK -o OUT.nii.gz|OUT.dcm [--source SCAN]``: a fluid mask as NIfTI with its spacing, or as a
DICOM SEG of the DICOM OCT it was made from, for 3D Slicer, ITK-SNAP or a PACS."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import CommandError, add_overwrite_option, add_spacing_option, spacing_given_over_file, spacing_text


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "export", help="write a fluid mask as NIfTI (.nii.gz, with its spacing) or DICOM SEG (.dcm, of a DICOM OCT)"
    )
    parser.add_argument("mask", help="the labels file (a mask from octfluid predict, an expert's mask, ...)")
    parser.add_argument("-o", "--output", required=True, help="OUT.nii.gz / OUT.nii (NIfTI) or OUT.dcm (DICOM SEG)")
    parser.add_argument(
        "--source",
        help="the scan the mask was made from: the DICOM OCT file or folder a DICOM SEG refers to (required for "
        ".dcm); for NIfTI, where the spacing comes from when the mask does not record it (a notice names any axis "
        "where it records another)",
    )
    add_spacing_option(parser, ", where the files do not give it (NIfTI)")
    add_overwrite_option(parser, "the -o file")
    parser.add_argument(
        "--grader",
        type=int,
        choices=(1, 2),
        help="for a Duke DME .mat MASK: whose fluid annotation to export (manualFluid1 or manualFluid2)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read_volume
    from ..io.duke_mat import GRADERS, MAT_SUFFIX, read_duke_mat
    from ..io.export import ExportError, export_format
    from ..outputs import check_outputs

    output_format = export_format(args.output)
    if output_format is None:
        raise CommandError(f"-o {args.output}: give a name ending in .nii.gz or .nii (NIfTI) or .dcm (DICOM SEG).")
    if output_format == "dicom-seg" and not args.source:
        raise CommandError("a DICOM SEG refers to the DICOM OCT it segments: give it with --source SCAN.")
    check_outputs({"-o": args.output}, inputs=[args.mask, args.source], overwrite=args.overwrite)  # before reading
    if Path(args.mask).suffix.lower() == MAT_SUFFIX:
        if args.grader is None:
            raise CommandError(f"{Path(args.mask).name} holds two graders' fluid: choose one with --grader 1 or 2.")
        mask = read_duke_mat(args.mask, labels=GRADERS[args.grader - 1])
    elif args.grader is not None:
        raise CommandError("--grader is for a Duke DME .mat mask only.")
    else:
        mask = read_volume(args.mask)
    if not mask.is_labels:
        raise CommandError(f"{Path(args.mask).name} holds OCT intensities, not labels: give the fluid mask file.")
    try:
        if output_format == "nifti":
            spacing = _nifti_spacing(args, mask)
            _write_nifti(args.output, mask, spacing)
        else:
            _write_seg(args, mask)
    except ExportError as error:
        raise CommandError(f"{Path(args.output).name}: {error}") from None
    return 0


def _nifti_spacing(args: argparse.Namespace, mask) -> tuple:
    """The spacing of each axis from --spacing, else from the mask file, else from the --source scan; a notice
    names each axis where the source records another value than the one used (it went unsaid)."""
    from ..io import read_volume
    from ..spacing import given_over_recorded

    spacing = spacing_given_over_file("export", args.spacing, mask, Path(args.mask).name)
    if args.source:
        source = read_volume(args.source)
        if source.data.shape != mask.data.shape:
            raise CommandError(
                f"{Path(args.mask).name} has shape {mask.data.shape} but {Path(args.source).name} has "
                f"{source.data.shape}: give the scan the mask was made from."
            )
        spacing, differing = given_over_recorded(spacing, source.spacing_mm)
        if differing:
            print(
                f"octfluid export: notice: {Path(args.source).name} records another spacing ({'; '.join(differing)}) "
                f"than the one used, {spacing_text(spacing)} (from --spacing or the mask); give --spacing to choose.",
                file=sys.stderr,
            )
    if None in spacing:
        unknown = ", ".join(axis for axis, s in zip(("B-scan", "depth", "width"), spacing) if s is None)
        raise CommandError(
            f"the spacing of {Path(args.mask).name} is unknown along {unknown} (the file does not record it"
            f"{', nor does the source' if args.source else ''}), and a NIfTI file always states its voxel size: "
            "give --spacing Z Y X in micrometres (from the device's report), or --source with the scan that records it."
        )
    return spacing


def _write_nifti(output: str, mask, spacing: tuple) -> None:
    from ..io.export import write_nifti

    write_nifti(output, mask.data, spacing)
    print(
        f"wrote {output}: NIfTI labels {mask.data.shape[::-1]} (width, depth, B-scans), spacing {spacing_text(spacing)}"
    )


def _write_seg(args: argparse.Namespace, mask) -> None:
    from ..io.dicom import read_dicom_source, seg_slice_thickness
    from ..io.export import fluid_mask, write_dicom_seg

    source_path = Path(args.source)
    if not (source_path.is_dir() or source_path.suffix.lower() in (".dcm", ".dicom") or _is_dicom(source_path)):
        raise CommandError(f"--source {args.source}: a DICOM SEG refers to a DICOM OCT file or folder, not this file.")
    source = read_dicom_source(source_path)
    write_dicom_seg(args.output, mask.data, source.headers, slice_thickness_mm=seg_slice_thickness(source))
    fluid_bscans = int(fluid_mask(mask.data).reshape(len(mask.data), -1).any(axis=1).sum())
    print(
        f"wrote {args.output}: DICOM SEG of {mask.n_bscans} B-scans (fluid in {fluid_bscans}) referencing series "
        f"{source.headers[0].get('SeriesInstanceUID')}"
    )


def _is_dicom(path: Path) -> bool:
    from ..io.dicom import is_dicom_file

    return path.is_file() and is_dicom_file(path)
