"""Expert and predicted fluid side by side on held-out B-scans, as PNG, to look at what the model does.

python docs/make_overlays.py [--weights W [W2 ...]] [--subjects duke_05 umn_13] [--shift NAME] [--out docs/overlays.png]

Each row is one B-scan: the expert's mask, then each model's prediction, left to right; with ``--shift`` the B-scans
(and the expert's mask with them) are first made to look like another device (``napari_octfluid.shifts``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from napari_octfluid.events import run_to_end
from napari_octfluid.inference import predict
from napari_octfluid.model import load_model
from napari_octfluid.overlay import overlay_rgb
from napari_octfluid.shifts import apply_shift
from napari_octfluid.training.shared_data import IGNORE, load_subjects
from napari_octfluid.weights import default_weights_path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", nargs="+", default=[None], help="one column per model (default: the shipped)")
    parser.add_argument("--shift", help="an appearance shift of napari_octfluid.shifts, seeded as evaluation seeds it")
    parser.add_argument("--subjects", nargs="+", default=["duke_05", "umn_13"])
    parser.add_argument("--per-subject", type=int, default=2)
    parser.add_argument("--out", default="docs/overlays.png")
    args = parser.parse_args()
    models = [load_model(weights or default_weights_path())[0] for weights in args.weights]
    rows = []
    for index, subject in enumerate(load_subjects(SHARED, args.subjects)):
        images, labels = subject.images, subject.labels
        if args.shift:
            images, labels = apply_shift(args.shift, images, labels, index=index)
        results = [run_to_end(predict(images, model))[1] for model in models]
        fluid = (labels == 1).reshape(len(labels), -1).sum(1)
        for z in np.argsort(fluid)[::-1][: args.per_subject]:
            expert = overlay_rgb(images[z], labels[z] == 1)
            expert[:, :, 2][labels[z] == IGNORE] //= 2  # unknown (unannotated) columns tinted yellow
            gap = np.full((expert.shape[0], 8, 3), 255, np.uint8)
            columns = [expert] + [piece for r in results for piece in (gap, overlay_rgb(images[z], r.labels[z]))]
            rows.append(np.concatenate(columns, axis=1)[:, : 1024 * (1 + len(models))])
            shown = ", ".join(str(w or "shipped weights") for w in args.weights)
            print(f"{subject.name} B-scan {z}{f' ({args.shift})' if args.shift else ''}: expert, then {shown}")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    iio.imwrite(args.out, np.concatenate(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
