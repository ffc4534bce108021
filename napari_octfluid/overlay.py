"""Fluid masks drawn over B-scans as RGB pictures, for reports and for looking at predictions."""

from __future__ import annotations

import numpy as np

FLUID_RGB = (255, 60, 40)


def to_uint8(bscan: np.ndarray) -> np.ndarray:
    """Stretch a B-scan of any numeric type to 0..255 between its 0.5th and 99.5th percentiles (NaN -> 0)."""
    values = np.nan_to_num(np.asarray(bscan, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = np.percentile(values, [0.5, 99.5])
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def overlay_rgb(bscan: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The B-scan in grey with fluid pixels (mask > 0) tinted in red; ``(depth, width, 3)`` uint8."""
    grey = to_uint8(bscan)
    rgb = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    fluid = np.asarray(mask) > 0
    rgb[fluid] = (1 - alpha) * rgb[fluid] + alpha * np.asarray(FLUID_RGB, np.float32)
    return rgb.astype(np.uint8)
