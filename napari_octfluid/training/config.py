"""The settings of a training run (saved inside its checkpoints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .augment import AugmentConfig
from .randomise import RandomiseConfig


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved inside its checkpoints."""

    loss: str = "composite"
    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 8
    crop: tuple[int, int] = (256, 256)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    fluid_crop_fraction: float = 0.6
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # domain randomisation of the crops (randomise.py): None, as the shipped weights were trained; a recipe's
    # [training.randomise] table turns it on (recipes/robust_weights.toml)
    randomise: RandomiseConfig | None = None
    # how many times as often a B-scan of a dataset is drawn for a crop as one of a dataset left out (recipe table
    # [training.dataset_weights], e.g. duke = 3.0); None: every training B-scan equally often, as the shipped weights
    dataset_weights: dict[str, float] | None = None
    early_stopping_patience: int | None = None  # epochs without a better validation Dice
    replay_fraction: float = 0.5  # share of each batch drawn from ``replay_data`` when it is given
    freeze_batchnorm: bool = False  # keep the starting model's normalisation statistics (fine-tuning on few B-scans)
    trainable: str = "all"  # the parts of the network that learn (training/parts.py: TRAINABLE_PARTS)
    change_kept: float = 1.0  # share of the change from the starting weights the result keeps (WiSE-FT, blend.py)
    # after each step the learning weights move back towards the starting ones by the learning rate times this
    # (decoupled L2-SP, anchor.py); 0: no pull, as every run before it existed
    start_pull: float = 0.0
    time_budget_s: float | None = None  # stop after this much training time (benchmarks, quick fine-tunes)
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict:
        values = asdict(self)
        values["crop"] = list(self.crop)
        if self.randomise is not None:
            values["randomise"] = self.randomise.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        if "augment" in values and isinstance(values["augment"], dict):
            values["augment"] = AugmentConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in values["augment"].items()}
            )
        if isinstance(values.get("randomise"), dict):
            values["randomise"] = RandomiseConfig.from_dict(values["randomise"])
        if "crop" in values:
            values["crop"] = tuple(values["crop"])
        return cls(**values)
