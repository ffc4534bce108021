"""Which axial pixel size does the fit choose from a few corrected B-scans, and what would each size have given?

    python benchmarks/bench_axial_fit.py --images A.tif B.tif --labels A_mask.tif B_mask.tif \\
        [--shifts none vendor_unaveraged axial_x2@1.41 ...] [--bscans 12] [--k 3] [--threads 1]

For each scan and shift (``NAME@STRENGTH`` sets a shift's strength: ``axial_x2@1.41`` is 1.41 times the rows), the
shipped model predicts the scan as a file without a spacing is predicted; the correction robot
(``benchmarks/correction_robot.py``, cap 60 actions, as ``bench_correction.py --first-cap 60``) corrects k B-scans
spread over it, and ``training.axial_fit.fit_axial_spacing`` fits the axial pixel size to those corrections (the
product's rule), and to the expert's masks of the same B-scans (what a complete correction would say). It prints,
per scan: the ratio of the scan's true axial pixel size to the model's (what the shift did to the rows), the sizes
chosen, the pooled Dice of the corrections against the expert, the agreement with the robot's corrections at each
ratio tried, and the pooled Dice of the other B-scans against the expert at each ratio (what each choice would give
before any training). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse

from bench_correction import predicted, spread, thinned  # beside this script
from correction_robot import correct_volume

from napari_octfluid.axial import model_axial_spacing
from napari_octfluid.cli._common import apply_threads, load_subjects
from napari_octfluid.evaluation import SHIFT_SEED
from napari_octfluid.events import run_to_end
from napari_octfluid.labels import counts_against
from napari_octfluid.model import load_model
from napari_octfluid.shifts import apply_shift
from napari_octfluid.training.axial_fit import fit_axial_spacing
from napari_octfluid.weights import default_weights_path

FIRST_CAP = 60  # actions per corrected B-scan, as the correction benchmark's documented runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--shifts", nargs="+", default=["none", "vendor_unaveraged"], help="NAME or NAME@STRENGTH")
    parser.add_argument("--k", type=int, default=3, help="B-scans corrected")
    parser.add_argument("--bscans", type=int, help="evenly spaced annotated B-scans kept per scan (default: all)")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    apply_threads(args.threads)

    model, _ = load_model(args.weights or default_weights_path())
    at = model_axial_spacing(model)
    subjects = load_subjects(args.images, args.labels)

    def ratio(size) -> float:
        return 1.0 if size is None else round(size / at, 2)

    print(f"{'shift':<20} {'scan':<20} {'true':>5} {'fit':>5} {'expert':>6} {'taught':>6}  agreement / other B-scans")
    for case in args.shifts:
        name, _, strength = case.partition("@")
        for index, subject in enumerate(subjects):
            images, expert = thinned(subject.images, subject.labels, args.bscans)
            rows = images.shape[1]
            if name != "none":
                images, expert = apply_shift(
                    name, images, expert, seed=SHIFT_SEED, index=index, strength=float(strength) if strength else None
                )
            labels, probability = predicted(model, images, None)
            first = spread(len(images), args.k)
            rest = [z for z in range(len(images)) if z not in first]
            corrections, _ = correct_volume(
                labels, probability, expert, model.decision_threshold, first, max_actions=FIRST_CAP
            )
            _, fit = run_to_end(fit_axial_spacing(model, [(images, corrections, first)], "cpu"))
            _, by_expert = run_to_end(fit_axial_spacing(model, [(images, expert, first)], "cpu"))
            taught = float(counts_against(corrections[first], expert[first]).pooled().dice)
            cells = []
            for size, dice in sorted(fit.dice.items(), key=lambda item: ratio(item[0])):
                masks, _ = predicted(model, images, size)
                other = float(counts_against(masks[rest], expert[rest]).pooled().dice)
                cells.append(f"{ratio(size):g}: {dice:.3f} / {other:.3f}")
            print(
                f"{case:<20} {subject.name[:20]:<20} {rows / images.shape[1]:>5.2f} {ratio(fit.used_mm):>5.2f} "
                f"{ratio(by_expert.used_mm):>6.2f} {taught:>6.3f}  " + " | ".join(cells),
                flush=True,
            )


if __name__ == "__main__":
    main()
