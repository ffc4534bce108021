"""Expert and predicted fluid side by side on held-out B-scans, as PNG, to look at what the model does.

python docs/make_overlays.py [--weights W] [--subjects duke_05 umn_13] [--out docs/overlays.png]
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
from napari_octfluid.training.shared_data import IGNORE, load_subjects
from napari_octfluid.weights import default_weights_path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--subjects", nargs="+", default=["duke_05", "umn_13"])
    parser.add_argument("--per-subject", type=int, default=2)
    parser.add_argument("--out", default="docs/overlays.png")
    args = parser.parse_args()
    model, _ = load_model(args.weights or default_weights_path())
    rows = []
    for subject in load_subjects(SHARED, args.subjects):
        _, result = run_to_end(predict(subject.images, model))
        fluid = (subject.labels == 1).reshape(len(subject.labels), -1).sum(1)
        for z in np.argsort(fluid)[::-1][: args.per_subject]:
            expert = overlay_rgb(subject.images[z], subject.labels[z] == 1)
            expert[:, :, 2][subject.labels[z] == IGNORE] //= 2  # unknown (unannotated) columns tinted yellow
            predicted = overlay_rgb(subject.images[z], result.labels[z])
            row = np.concatenate([expert, np.full((expert.shape[0], 8, 3), 255, np.uint8), predicted], axis=1)
            rows.append(row[:, :2048])
            print(f"{subject.name} B-scan {z}: expert (left) vs predicted (right)")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    iio.imwrite(args.out, np.concatenate(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
