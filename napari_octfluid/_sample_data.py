"""npe2 sample-data contribution: a real Duke DME scan with its expert fluid mask (see sample_data/README.md)."""

from __future__ import annotations

from pathlib import Path

from ._layers import coloured, layer_data
from ._reader_preference import prefer_octfluid_reader
from .colours import REFERENCE
from .io import read_volume

SAMPLE_DIR = Path(__file__).parent / "sample_data"
SAMPLE_SCAN = SAMPLE_DIR / "duke_dme_subject01_images.tif"
SAMPLE_MASK = SAMPLE_DIR / "duke_dme_subject01_fluid_grader1.tif"


def duke_subject01():
    """The 11 B-scans of Duke DME subject 1 and grader 1's fluid mask, as an image and a labels layer."""
    prefer_octfluid_reader()  # a first look at octfluid often starts here: later File > Open uses octfluid's reader
    scan = layer_data(read_volume(SAMPLE_SCAN), name="duke_dme_subject01")
    mask = coloured(layer_data(read_volume(SAMPLE_MASK), name="duke_dme_subject01 expert fluid (grader 1)"), REFERENCE)
    return [scan, mask]
