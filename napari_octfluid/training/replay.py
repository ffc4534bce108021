"""The replay crops shipped beside the default weights: a little of what they were trained on, for fine-tuning.

Fine-tuning on a few corrected B-scans alone makes a model forget: the fine-tuning benchmark saw Dice on other
subjects fall by up to 0.20 without replay (docs/finetune_benchmark.md). The shared training data cannot ship with
the package, so a few crops of it do: 4 per training subject of the recipe, 256 x 256, three in four centred near
fluid, already normalised (``preprocess.normalize_bscans`` on the whole B-scan, then stored as uint8: the rounding,
under 0.2 % of the range, is far below the training's own intensity jitter). Rebuild them with

    python -m napari_octfluid.training.replay --recipe recipes/default_weights.toml

No library keeps a replay buffer of image crops in a weights-only file, hence this module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..labels import IGNORE
from ..weights import WEIGHTS_DIR
from .data import BscanSet, random_crops

REPLAY_CROPS = WEIGHTS_DIR / "replay_crops.npz"
CROPS_PER_SUBJECT = 4
CROP = (256, 256)


def build_replay_crops(
    subjects, crops_per_subject: int = CROPS_PER_SUBJECT, crop: tuple[int, int] = CROP, seed: int = 0
) -> BscanSet:
    """``crops_per_subject`` random crops of each subject's B-scans (``training.shared_data.Subject``)."""
    rng = np.random.default_rng(seed)
    images, labels, sources = [], [], []
    for subject in subjects:
        data = BscanSet.from_subjects([subject])
        crop_images, crop_labels = random_crops(data, crops_per_subject, crop, 0.75, IGNORE, rng)
        images += list(crop_images)
        labels += list(crop_labels)
        sources += [subject.name] * crops_per_subject
    return BscanSet(images, labels, sources)


def save_replay_crops(crops: BscanSet, path: str | Path = REPLAY_CROPS) -> Path:
    path = Path(path)
    np.savez_compressed(
        path,
        images=np.round(np.stack(crops.images) * 255).astype(np.uint8),
        labels=np.stack(crops.labels),
        sources=np.array(crops.sources),
    )
    return path


def load_replay_crops(path: str | Path = REPLAY_CROPS, exclude: tuple[str, ...] = ()) -> BscanSet | None:
    """The shipped crops (None where this installation has none), less those of the subjects in ``exclude``."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:  # plain arrays: a file that needs pickle is refused
        images, labels, sources = stored["images"], stored["labels"], [str(s) for s in stored["sources"]]
    keep = [i for i, source in enumerate(sources) if source not in exclude]
    return BscanSet(
        [images[i].astype(np.float32) / 255 for i in keep], [labels[i] for i in keep], [sources[i] for i in keep]
    )


def main(argv: list[str] | None = None) -> None:
    from .recipe import recipe_subjects

    parser = argparse.ArgumentParser(description="Rebuild the replay crops shipped beside the default weights.")
    parser.add_argument("--recipe", required=True, help="the recipe of the shipped weights: its training subjects")
    parser.add_argument("--out", default=str(REPLAY_CROPS))
    args = parser.parse_args(argv)
    crops = build_replay_crops(recipe_subjects(args.recipe, "train"))
    path = save_replay_crops(crops, args.out)
    print(
        f"wrote {len(crops)} crops of {len(set(crops.sources))} subjects to {path} ({path.stat().st_size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
