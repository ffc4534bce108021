"""Test-time flip averaging, measured by cross-validation by subject: each B-scan segmented as it is and mirrored
left-right, the two fluid probabilities averaged (the mirrored one mirrored back), as nnU-Net's test-time mirroring
does (Isensee et al., Nature Methods 2021). Prediction does not offer it: this script measures whether it should.

The network of each fold is wrapped so that octfluid's one forward pass (``inference.forward``, reached through
``inference.fused_for_inference``) averages the two passes; calibration and evaluation both go through it, so each
fold's threshold and minimum lesion size are chosen again, on its training B-scans, for the averaged probabilities:

    python benchmarks/bench_flip_average.py calibrate --crossval CV --out DIR [--folds 1 2 3 4 5]
    python benchmarks/bench_flip_average.py crossval --recipe recipes/robust_weights.toml --folds 5 --out DIR \
        --only-folds 1 2 3 4 5 --reuse [--shift ...] [--csv T.csv]   # octfluid crossval's own options

``calibrate`` copies each fold's ``final.pt`` of CV into DIR and calibrates it there; ``crossval`` is ``octfluid
crossval`` with the averaging on. Measured 2026-12-01 (MODEL_CARD.md): a gain of 0.001-0.002 pooled Dice for twice
the prediction time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

import napari_octfluid.inference as inference

_fused_for_inference = inference.fused_for_inference


class FlipAverage(nn.Module):
    """``inner``'s logits replaced by the log of the mean softmax of the B-scans and their mirror images (mirrored
    back): the averaged probabilities, as logits that :func:`~napari_octfluid.inference.labels_and_fluid` reads."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        for name in ("decision_threshold", "min_lesion_pixels", "config", "axial_spacing_mm"):
            if hasattr(inner, name):
                object.__setattr__(self, name, getattr(inner, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mirrored = self.inner(x.flip(-1)).float().softmax(1).flip(-1)
        return torch.log((self.inner(x).float().softmax(1) + mirrored) / 2 + 1e-12)


def _averaging(model: nn.Module) -> nn.Module:
    return model if isinstance(model, FlipAverage) else FlipAverage(_fused_for_inference(model))


def calibrate(args: argparse.Namespace) -> None:
    from bench_change_kept import calibrated_copy, training_pool

    from napari_octfluid.model import load_model

    subjects = training_pool(args.recipe)
    for fold in args.folds:
        target = args.out / f"fold_{fold}" / "final.pt"
        threshold = calibrated_copy(args.crossval / f"fold_{fold}" / "final.pt", target, subjects)
        print(f"fold {fold}: threshold {threshold}, min lesion {load_model(target)[0].min_lesion_pixels} px")


def main() -> None:
    inference.fused_for_inference = _averaging
    if sys.argv[1:2] == ["crossval"]:
        from napari_octfluid.cli import main as octfluid

        sys.exit(octfluid(sys.argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["calibrate"])
    parser.add_argument("--crossval", required=True, type=Path, help="a crossval --out folder (fold_K/final.pt)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--recipe", default="recipes/default_weights.toml", help="the recipe the folds came from")
    parser.add_argument("--folds", nargs="+", default=["1", "2", "3", "4", "5"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    calibrate(args)


if __name__ == "__main__":
    main()
