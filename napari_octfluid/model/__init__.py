"""The TransUNet, its configurations by name, and safe checkpoints."""

from .checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint, update_checkpoint
from .configs import DEFAULT_CONFIG, MODEL_CONFIGS, TransUNetConfig
from .fusion import fused_for_inference, is_fused_for_inference
from .transunet import TransUNet, count_parameters

__all__ = [
    "CheckpointError",
    "DEFAULT_CONFIG",
    "MODEL_CONFIGS",
    "TransUNet",
    "TransUNetConfig",
    "count_parameters",
    "fused_for_inference",
    "is_fused_for_inference",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
    "update_checkpoint",
]
