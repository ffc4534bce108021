"""What domain randomisation (napari_octfluid/training/randomise.py) costs a training step: the time to draw a batch
of crops without and with it, each shift's time on one strip, and a whole step (crops, augmentation, forward and
backward) of the chosen model without and with it.

    python benchmarks/bench_randomise.py [--subjects duke_01 umn_00] [--batch 8] [--crop 256 256] [--config paper]
        [--steps 3] [--threads 2] [--probability 0.3]

Reads the subjects from the shared data (../shared/data). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_octfluid.cli._common import apply_threads
from napari_octfluid.labels import IGNORE
from napari_octfluid.shifts import get_shift
from napari_octfluid.training.data import BscanSet, random_crops
from napari_octfluid.training.randomise import ORDER, SHIFT_OF, RandomiseConfig
from napari_octfluid.training.shared_data import load_subjects

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def per_batch_s(data, config, batch, crop, repeats, seed=0) -> float:
    rng = np.random.default_rng(seed)
    random_crops(data, batch, crop, 0.6, IGNORE, rng, config)  # imports and first calls out of the timing
    start = time.perf_counter()
    for _ in range(repeats):
        random_crops(data, batch, crop, 0.6, IGNORE, rng, config)
    return (time.perf_counter() - start) / repeats


def per_shift_ms(data, crop_width: int) -> dict[str, float]:
    """Each shift at the middle of its range on a strip of full depth as wide as a crop."""
    raw, labels = data.raw[0][None, :, :crop_width], data.labels[0][None, :, :crop_width]
    config, rng, times = RandomiseConfig(), np.random.default_rng(0), {}
    for name in ORDER:
        shift, strength = get_shift(SHIFT_OF.get(name, name)), float(np.mean(getattr(config, name)))
        shift(raw, labels, rng, strength)
        start = time.perf_counter()
        for _ in range(3):
            shift(raw, labels, rng, strength)
        times[name] = (time.perf_counter() - start) / 3 * 1000
    return times


def per_step_s(data, model_config: str, randomise, batch, crop, steps) -> float:
    """Seconds per training step (after one step of warm-up), through the engine."""
    from napari_octfluid.model import MODEL_CONFIGS, TransUNet
    from napari_octfluid.training.config import TrainConfig
    from napari_octfluid.training.engine import StepEnd, train

    config = TrainConfig(
        epochs=1, steps_per_epoch=steps + 1, batch_size=batch, crop=crop, device="cpu", randomise=randomise
    )
    times = [
        event.elapsed_s
        for event in train(TransUNet(MODEL_CONFIGS[model_config]), data, None, config)
        if isinstance(event, StepEnd)
    ]
    return (times[-1] - times[0]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", nargs="+", default=["duke_01", "umn_00"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, nargs=2, default=[256, 256])
    parser.add_argument("--config", default="paper", help="model configuration for the whole-step timing")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps each way (0: crops only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probability", type=float, default=RandomiseConfig().probability)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    threads = apply_threads(args.threads)
    data = BscanSet.from_subjects(load_subjects(SHARED, args.subjects))
    crop, randomise = tuple(args.crop), RandomiseConfig(probability=args.probability)
    print(f"{len(data)} B-scans of {', '.join(args.subjects)}; batch {args.batch} crops of {crop}; {threads} threads")
    print("shift on one strip (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per_shift_ms(data, crop[1]).items()))
    plain = per_batch_s(data, None, args.batch, crop, args.repeats)
    randomised = per_batch_s(data, randomise, args.batch, crop, args.repeats)
    print(f"crops per batch: {plain * 1000:.0f} ms plain, {randomised * 1000:.0f} ms randomised (p {args.probability})")
    if args.steps:
        without = per_step_s(data, args.config, None, args.batch, crop, args.steps)
        with_it = per_step_s(data, args.config, randomise, args.batch, crop, args.steps)
        print(f"training step ({args.config}): {without:.2f} s without, {with_it:.2f} s with randomisation")


if __name__ == "__main__":
    main()
