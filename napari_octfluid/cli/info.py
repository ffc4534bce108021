"""``octfluid info SCAN``: what octfluid reads from a scan (shape, spacing, metadata)."""

from __future__ import annotations

import argparse

from ._common import spacing_text


def add_parser(sub) -> None:
    parser = sub.add_parser("info", help="show what octfluid reads from a scan: shape, spacing, metadata")
    parser.add_argument("scan")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read_volume

    volume = read_volume(args.scan)
    shape = volume.data.shape
    print(f"file:      {volume.meta.get('source')}")
    print(f"format:    {volume.meta.get('format')}")
    print(f"shape:     {volume.n_bscans} B-scans x {shape[1]} x {shape[2]} ({volume.data.dtype})")
    print(
        f"spacing:   {spacing_text(volume.spacing_mm)} (B-scan, depth, width; from {volume.meta.get('spacing_source')})"
    )
    print(f"content:   {'labels' if volume.is_labels else 'OCT intensities'}")
    for key in ("laterality", "device", "acquired"):
        if key in volume.meta:
            print(f"{key + ':':<10} {volume.meta[key]}")
    return 0
