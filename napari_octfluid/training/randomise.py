"""Domain randomisation: training crops made to look like other devices, settings and worse days, with the
appearance shifts of :mod:`napari_octfluid.shifts` applied at random strengths to the raw B-scan before it is
normalised, as a scan from another device reaches prediction (issue 18, item 2).

Evaluation applies each shift at one fixed strength (``Shift.strength``) or in the fixed chains of its "other vendor"
presets. Training draws each shift on its own, with probability :attr:`RandomiseConfig.probability`, at a strength
uniform in a range that brackets the evaluation's strength (log-uniform for resampling factors), and chains the drawn
shifts in the order a scan meets them (sampling, optics, detector, display, export); so the evaluation's exact
settings and combinations are never what training saw. Tobin et al. 2017 (domain randomisation, IROS) is the idea;
Billot et al. 2023 (SynthSeg, Med Image Anal 86:102789) used it to make segmentation hold across MRI contrasts.

Cost: the shifts run on a strip of full depth around each crop, not on the whole B-scan (a 256-column strip is a
quarter of a UMN B-scan): the strip is normalised as :func:`~napari_octfluid.preprocess.normalize_bscans` normalises
a B-scan (full depth holds the dark vitreous and the bright layers that set the percentiles), then cropped.
``benchmarks/bench_randomise.py`` prints the time per step with and without.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..labels import IGNORE
from ..preprocess import normalize_bscans
from ..shifts import get_shift

# the order a scan meets them: sampling, optics, detector, display, export; names are those of shifts.SHIFTS, but
# for the two resampling factors, whose shifts take the factor as their strength
ORDER = (
    "axial_factor",
    "lateral_factor",
    "defocus",
    "vessel_shadows",
    "media_opacity",
    "speckle",
    "noise_floor",
    "gamma",
    "contrast",
    "brightness",
    "jpeg",
    "registration_border",
    "white_border",
)
SHIFT_OF = {"axial_factor": "axial_x2", "lateral_factor": "lateral_x0.5"}  # the shift function each factor drives
LOG_UNIFORM = {"axial_factor", "lateral_factor", "gamma"}  # factors: x0.5 as likely as x2


@dataclass(frozen=True)
class RandomiseConfig:
    """Which shifts training draws and the range of each one's strength (in the units of
    :data:`napari_octfluid.shifts.SHIFTS`; evaluation's default strength in brackets). A range of ``None`` (``false``
    in a recipe) leaves that shift out."""

    probability: float = 0.3  # each shift's chance to be applied to a crop: about four shifts per crop
    axial_factor: tuple[float, float] | None = (0.5, 2.0)  # rows times (0.5, 2: axial_x0.5, axial_x2)
    lateral_factor: tuple[float, float] | None = (0.5, 1.5)  # A-scans times (0.5, 1.5)
    defocus: tuple[float, float] | None = (0.5, 2.5)  # blur sigma, pixels (2)
    vessel_shadows: tuple[float, float] | None = (0.3, 0.9)  # darkening (0.7)
    media_opacity: tuple[float, float] | None = (0.2, 0.8)  # depth (0.6)
    speckle: tuple[float, float] | None = (0.1, 0.7)  # speckle contrast (0.5)
    noise_floor: tuple[float, float] | None = (2.0, 20.0)  # mean, 8-bit grey levels (12)
    gamma: tuple[float, float] | None = (0.6, 1.8)  # exponent (1.6)
    contrast: tuple[float, float] | None = (0.5, 1.1)  # factor (0.7)
    brightness: tuple[float, float] | None = (-25.0, 35.0)  # 8-bit grey levels (25)
    jpeg: tuple[float, float] | None = (15.0, 90.0)  # quality (30)
    # shares of the strip's width (a quarter of a UMN B-scan's), so about a quarter of these of the B-scan's (0.08)
    registration_border: tuple[float, float] | None = (0.05, 0.4)
    white_border: tuple[float, float] | None = (0.05, 0.4)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"randomise.probability must be 0 to 1, not {self.probability}")
        for name in ORDER:
            bounds = getattr(self, name)
            if bounds is not None and (len(bounds) != 2 or not bounds[0] <= bounds[1]):
                raise ValueError(f"randomise.{name} must be [low, high] with low <= high, not {bounds!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "RandomiseConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"randomise: unknown setting(s) {', '.join(unknown)}; the settings are {sorted(known)}")
        # TOML has no null: ``false`` leaves a shift out
        return cls(**{k: tuple(v) if isinstance(v, list) else (None if v is False else v) for k, v in values.items()})


def draw(config: RandomiseConfig, rng: np.random.Generator) -> list[tuple[str, float]]:
    """The shifts one crop gets, in :data:`ORDER`, each with its strength: each shift of the config with
    probability ``config.probability``, at a strength uniform in its range (log-uniform for factors and gamma)."""
    drawn = []
    for name in ORDER:
        bounds = getattr(config, name)
        if bounds is None or rng.random() >= config.probability:
            continue
        low, high = bounds
        if name in LOG_UNIFORM:
            strength = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            strength = float(rng.uniform(low, high))
        drawn.append((name, strength))
    return drawn


def randomised_crop(
    raw: np.ndarray,
    label: np.ndarray,
    top: int,
    left: int,
    crop: tuple[int, int],
    config: RandomiseConfig,
    rng: np.random.Generator,
    ignore_index: int = IGNORE,
) -> tuple[np.ndarray, np.ndarray]:
    """The crop at ``top``, ``left`` of one raw B-scan and its labels, made to look as the drawn shifts say and
    normalised: float32 image and uint8 labels of ``crop`` shape, padded with 0 and ``ignore_index`` where the resampled
    strip is smaller. The crop keeps its centre on the same tissue when a factor resamples the strip."""
    height, width = crop
    rows, columns = label.shape
    shifts = draw(config, rng)
    strengths = dict(shifts)
    lateral = strengths.get("lateral_factor", 1.0)
    # a strip of full depth, wide enough that the crop still fits once the A-scans are resampled
    centre_column = left + min(width, columns) / 2
    strip_width = min(columns, math.ceil(width / lateral) + 2)
    strip_left = int(np.clip(round(centre_column - strip_width / 2), 0, columns - strip_width))
    image = raw[None, :, strip_left : strip_left + strip_width]
    labels = label[None, :, strip_left : strip_left + strip_width]
    for name, strength in shifts:
        image, labels = get_shift(SHIFT_OF.get(name, name))(image, labels, rng, strength)
    normalised = normalize_bscans(image)[0]
    labels = labels[0]
    # where the crop's centre moved to
    row_scale, column_scale = labels.shape[0] / rows, labels.shape[1] / strip_width
    centre_row = (top + min(height, rows) / 2) * row_scale
    centre_column = (centre_column - strip_left) * column_scale
    new_top = int(np.clip(round(centre_row - height / 2), 0, max(labels.shape[0] - height, 0)))
    new_left = int(np.clip(round(centre_column - width / 2), 0, max(labels.shape[1] - width, 0)))
    out_image = np.zeros((height, width), np.float32)
    out_labels = np.full((height, width), ignore_index, np.uint8)
    window = (slice(new_top, new_top + height), slice(new_left, new_left + width))
    h, w = normalised[window].shape
    out_image[:h, :w] = normalised[window]
    out_labels[:h, :w] = labels[window]
    return out_image, out_labels
