"""The project's expert-labelled OCT data (Duke DME, UMN DME): subjects as image/label volumes.

Duke's export lost the original "not annotated" mark, so fluid outside the graders' band would read as
background. We estimate the band as the span of columns that hold fluid for either grader in any Duke subject
(columns 109..635 of 768; the shared README reports about 99..635) and mark the columns outside it as unknown
(``IGNORE``), so training and evaluation neither reward nor punish predictions there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_volume
from ..labels import IGNORE
from ..subjects import Subject

DUKE_ANNOTATED_COLUMNS = (109, 636)  # [start, stop): estimated as described above


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
    scans = sorted(root.glob("duke_dme/Subject_*_images.tif")) + sorted(root.glob("umn_dme/Subject_*_images.tif"))
    for images in scans:
        dataset = "duke" if images.parent.name == "duke_dme" else "umn"
        number = images.name.split("_")[1]
        name = f"{dataset}_{number}"
        if names is not None and name not in names:
            continue
        scan = read_volume(images)
        grader1 = read_volume(images.with_name(f"Subject_{number}_fluid_grader1.tif")).data
        grader2_path = images.with_name(f"Subject_{number}_fluid_grader2.tif")
        if dataset == "duke":
            second = _with_band(read_volume(grader2_path).data) if grader2_path.exists() else None
            subjects.append(
                Subject(name, scan.data, _with_band(grader1), second, dataset=dataset, spacing_mm=scan.spacing_mm)
            )
        else:
            subjects.append(
                Subject(name, scan.data, grader1.astype(np.uint8), dataset=dataset, spacing_mm=scan.spacing_mm)
            )
    if names is not None and len(subjects) != len(names):
        missing = sorted(set(names) - {s.name for s in subjects})
        raise FileNotFoundError(f"subjects not found under {root}: {', '.join(missing)}")
    return subjects
