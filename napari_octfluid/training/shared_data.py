"""The project's expert-labelled OCT data (Duke DME, UMN DME): subjects as image/label volumes.

Duke's export lost the original "not annotated" mark, so fluid outside the graders' band would read as
background. We estimate the band as the span of columns that hold fluid for either grader in any Duke subject
(columns 109..635 of 768; the shared README reports about 99..635) and mark the columns outside it as unknown
(``IGNORE``), so training and evaluation neither reward nor punish predictions there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import read_volume

IGNORE = 255  # label value of unlabelled pixels (the losses' and metrics' ignore_index)
DUKE_ANNOTATED_COLUMNS = (109, 636)  # [start, stop): estimated as described above


@dataclass
class Subject:
    name: str  # e.g. "duke_01", "umn_07"
    images: np.ndarray  # [Z, Y, X] uint8
    labels: np.ndarray  # [Z, Y, X] uint8: 0 background, 1 fluid, IGNORE unknown
    second_grader: np.ndarray | None = None  # Duke's grader 2, same coding

    @property
    def dataset(self) -> str:
        return self.name.split("_")[0]


def _with_band(mask: np.ndarray) -> np.ndarray:
    labelled = mask.astype(np.uint8).copy()
    start, stop = DUKE_ANNOTATED_COLUMNS
    labelled[..., :start] = IGNORE
    labelled[..., stop:] = IGNORE
    return labelled


def load_subjects(root: str | Path, names: list[str] | None = None) -> list[Subject]:
    """Every subject under ``root`` (the shared ``data`` folder), or only ``names``."""
    root = Path(root)
    subjects = []
    for images in sorted(root.glob("duke_dme/Subject_*_images.tif")) + sorted(root.glob("umn_dme/Subject_*_images.tif")):
        dataset = "duke" if images.parent.name == "duke_dme" else "umn"
        number = images.name.split("_")[1]
        name = f"{dataset}_{number}"
        if names is not None and name not in names:
            continue
        grader1 = read_volume(images.with_name(f"Subject_{number}_fluid_grader1.tif")).data
        grader2_path = images.with_name(f"Subject_{number}_fluid_grader2.tif")
        if dataset == "duke":
            second = _with_band(read_volume(grader2_path).data) if grader2_path.exists() else None
            subjects.append(Subject(name, read_volume(images).data, _with_band(grader1), second))
        else:
            subjects.append(Subject(name, read_volume(images).data, grader1.astype(np.uint8)))
    if names is not None and len(subjects) != len(names):
        missing = sorted(set(names) - {s.name for s in subjects})
        raise FileNotFoundError(f"subjects not found under {root}: {', '.join(missing)}")
    return subjects
