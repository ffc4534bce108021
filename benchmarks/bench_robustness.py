"""Robustness to appearance shifts: pooled and per-subject Dice and the false-alarm rate on fluid-free B-scans,
clean beside each named shift of ``napari_octfluid.shifts``, on any scans given as files.

    python benchmarks/bench_robustness.py --images A.tif B.tif --labels A_mask.tif B_mask.tif \\
        [--weights W] [--shift NAME ... | all | none] [--min-lesion-pixels N] [--padding-rule exact-zero] \\
        [--normalisation whole] [--no-shadow-streaks] [--bscans 8] [--threads 2] [--no-axial-resampling] [--markdown]

The table is the one ``octfluid evaluate --shift`` prints, through the same evaluation path (``evaluation.evaluate``
over ``inference.predict``). ``--padding-rule exact-zero`` swaps in the padding rule as it was before issue 18
(exact zeros and saturated pixels touching the border) and ``--min-lesion-pixels 0`` turns the size rule off, to
measure what the mask rules change; ``--normalisation whole`` normalises as before the white-border fix
(percentiles of every pixel, the padding included and left as it is); ``--no-axial-resampling`` predicts shifted
scans at their own rows, as before axial resampling (``--shift axial_x2`` etc. then show the collapse it fixes).
``--no-shadow-streaks`` keeps the predicted streaks in vessel shadows that prediction removes
(``napari_octfluid.shadow_streaks``), as before that rule. ``--bscans N`` keeps N evenly spaced B-scans of each
file, for a short CPU run.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from napari_octfluid import inference
from napari_octfluid.cli._common import apply_threads, load_subjects
from napari_octfluid.evaluation import evaluate, format_table, robustness_table
from napari_octfluid.model import load_model
from napari_octfluid.preprocess import normalize_bscans
from napari_octfluid.shifts import SHIFTS
from napari_octfluid.subjects import Subject
from napari_octfluid.weights import default_weights_path


def exact_zero_padding(bscans: np.ndarray) -> np.ndarray:
    """The padding rule before issue 18: zeros and saturated values (NaN/inf for floats) touching the border."""
    data = bscans[None] if bscans.ndim == 2 else bscans
    out = np.zeros(data.shape, bool)
    saturated = np.iinfo(data.dtype).max if np.issubdtype(data.dtype, np.integer) else None
    for index, bscan in enumerate(data):
        flat = (bscan == 0) | ~np.isfinite(bscan) if saturated is None else (bscan == 0) | (bscan == saturated)
        regions, count = ndimage.label(flat)
        edge = np.zeros(count + 1, bool)
        for side in (regions[0], regions[-1], regions[:, 0], regions[:, -1]):
            edge[side] = True
        edge[0] = False
        out[index] = edge[regions]
    return out[0] if bscans.ndim == 2 else out


def whole_bscan_normalisation(bscans: np.ndarray, outside: np.ndarray | None = None) -> np.ndarray:
    """Normalisation before the white-border fix: percentiles of every pixel, the padding left as it is."""
    return normalize_bscans(bscans, np.zeros(np.shape(bscans), bool))


def keep_shadow_streaks(labels: np.ndarray, normalised: np.ndarray) -> np.ndarray:
    """Prediction as before the shadow-streak rule: the labels as the model gave them."""
    return labels


def thinned(subject: Subject, count: int | None) -> Subject:
    if not count or count >= len(subject.images):
        return subject
    keep = np.unique(np.linspace(0, len(subject.images) - 1, count).round().astype(int))
    return Subject(
        subject.name, subject.images[keep], subject.labels[keep], dataset=subject.dataset, spacing_mm=subject.spacing_mm
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument(
        "--shift", nargs="+", default=["all"], help=f"'all', 'none' (clean only) or some of: {', '.join(SHIFTS)}"
    )
    parser.add_argument("--min-lesion-pixels", type=int, help="default: the checkpoint's (off without one)")
    parser.add_argument("--padding-rule", choices=["current", "exact-zero"], default="current")
    parser.add_argument("--normalisation", choices=["tissue", "whole"], default="tissue")
    parser.add_argument(
        "--no-shadow-streaks", dest="shadow_streaks", action="store_false", help="keep streaks in vessel shadows"
    )
    parser.add_argument("--bscans", type=int, help="evenly spaced B-scans kept per file (default: all)")
    parser.add_argument("--no-axial-resampling", dest="axial_resampling", action="store_false")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--long", action="store_true", help="also print every row (per dataset and subject)")
    args = parser.parse_args()

    shifts = list(SHIFTS) if "all" in args.shift else [name for name in args.shift if name != "none"]
    if args.padding_rule == "exact-zero":
        inference.padding_mask = exact_zero_padding  # what inference._prepared calls
    if args.normalisation == "whole":
        inference.normalize_bscans = whole_bscan_normalisation  # what inference._prepared calls
    if not args.shadow_streaks:
        inference.remove_shadow_streaks = keep_shadow_streaks  # what inference._cleaned calls
    weights = args.weights or default_weights_path()
    model, _ = load_model(weights)
    threads = apply_threads(args.threads)
    subjects = [thinned(subject, args.bscans) for subject in load_subjects(args.images, args.labels)]
    start = time.perf_counter()
    rows = evaluate(
        model,
        subjects,
        (0.0,),
        args.device,
        shifts=shifts,
        per_subject=True,
        min_lesion_pixels=args.min_lesion_pixels,
        axial_resampling=args.axial_resampling,
    )
    seconds = time.perf_counter() - start
    n_bscans = sum(len(subject.annotated_bscans()) for subject in subjects)
    print(
        f"weights {weights}; {len(subjects)} files, {n_bscans} B-scans; padding rule {args.padding_rule}; "
        f"normalisation {args.normalisation}; shadow streaks {'removed' if args.shadow_streaks else 'kept'}; "
        f"min lesion {inference.min_lesion_pixels_of(model, args.min_lesion_pixels)} pixels; "
        f"axial resampling {'on' if args.axial_resampling else 'off'}; "
        f"{threads} threads; {seconds:.0f} s"
    )
    if args.long:
        print(format_table(rows))
    print(robustness_table(rows, markdown=args.markdown))


if __name__ == "__main__":
    main()
