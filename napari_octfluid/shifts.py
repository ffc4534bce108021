"""A catalogue of named, seeded appearance shifts: how the same eye looks on another device, another setting or a
worse day, applied to B-scans ``images[Z, Y, X]`` and their ``labels[Z, Y, X]`` together.

Each :class:`Shift` is a pure function ``(images, labels, rng, strength) -> (images, labels)`` with a name and a
default strength; :data:`SHIFTS` is the one registry (``octfluid evaluate --shift``,
``benchmarks/bench_robustness.py``).
Intensity shifts leave the labels as they are; geometric ones resample the labels with nearest neighbour on the same
grid as the images, so label values (``FLUID``, ``IGNORE``...) are kept and a lesion moves with the tissue around it.
A resampling shift changes the pixel size: :func:`shifted_spacing` says the new one, which evaluation hands to
prediction as a scan's file would.
Images keep their type and grey-level range (integers are rounded and clipped).

Intensities are worked on as a fraction of the type's full range (``_unit``): 0..1 for uint8/uint16, the scan's own
maximum for float data. Strengths in grey levels are 8-bit grey levels, scaled to the data's range.

MONAI's intensity transforms do the Gaussian noise (``RandGaussianNoise``), gamma (``AdjustContrast``) and defocus
(``GaussianSmooth``, in-plane only since each B-scan is a channel). Resampling uses scikit-image's ``resize``, which
maps bilinear (images) and nearest (labels) onto the same pixel centres; torch-based zooms place ``nearest`` half a
pixel off bilinear, which would move labels against their tissue. Speckle, noise floor, shadows, borders and JPEG
have no MONAI transform of that meaning and are written here in a few lines each.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .labels import BACKGROUND

ShiftFunction = Callable[[np.ndarray, np.ndarray, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Shift:
    """A named appearance shift with its default strength; call it as ``shift(images, labels, rng)``."""

    name: str
    strength: float  # the default: the level evaluation reports
    description: str
    function: ShiftFunction

    def __call__(
        self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, strength: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        images, labels = np.asarray(images), np.asarray(labels)
        squeeze = images.ndim == 2
        if squeeze:
            images, labels = images[None], labels[None]
        if images.shape != labels.shape:
            raise ValueError(f"images {images.shape} and labels {labels.shape} differ in shape")
        shifted, moved = self.function(images, labels, rng, self.strength if strength is None else float(strength))
        return (shifted[0], moved[0]) if squeeze else (shifted, moved)


def shift_rng(seed: int, name: str, index: int = 0) -> np.random.Generator:
    """The generator for shift ``name`` on the ``index``-th volume: every model and every run sees the same shift."""
    return np.random.default_rng([int(seed), int(index), zlib.crc32(name.encode())])


def apply_shift(
    name: str, images: np.ndarray, labels: np.ndarray, seed: int = 0, index: int = 0, strength: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shift ``name`` of :data:`SHIFTS` applied to one volume, seeded by ``seed`` and the volume's ``index``."""
    return get_shift(name)(images, labels, shift_rng(seed, name, index), strength)


def shifted_spacing(
    spacing_mm: tuple[float | None, float | None, float | None],
    before: tuple[int, int, int],
    after: tuple[int, int, int],
) -> tuple[float | None, float | None, float | None]:
    """The spacing of a volume of shape ``before`` once a shift has resampled it to ``after``: the same extent over
    more or fewer pixels, so each axis' spacing is divided by the factor its pixel count was multiplied by
    (``axial_x2``: half the axial pixel size). Unknown axes stay unknown; intensity shifts change nothing."""
    return tuple(
        None if spacing is None else spacing * old / new for spacing, old, new in zip(spacing_mm, before, after)
    )


def get_shift(name: str) -> Shift:
    try:
        return SHIFTS[name]
    except KeyError:
        raise KeyError(f"no shift named {name!r}; the shifts are: {', '.join(SHIFTS)}") from None


# --- intensity helpers ------------------------------------------------------------------------------------------


def _full_range(images: np.ndarray) -> float:
    if np.issubdtype(images.dtype, np.integer):
        return float(np.iinfo(images.dtype).max)
    finite = images[np.isfinite(images)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _unit(images: np.ndarray) -> np.ndarray:
    """Images as float32 fractions of their full range (NaN stays NaN)."""
    return images.astype(np.float32) / np.float32(_full_range(images))


def _back(unit: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Fractions back to ``like``'s type and range, clipped to it (integers rounded)."""
    values = np.clip(unit, 0.0, 1.0) * np.float32(_full_range(like))
    if np.issubdtype(like.dtype, np.integer):
        return np.rint(values).astype(like.dtype)
    return values.astype(like.dtype)


def _grey(levels_8bit: float) -> float:
    """8-bit grey levels as a fraction of the full range."""
    return float(levels_8bit) / 255.0


def _seed(rng: np.random.Generator) -> int:
    """An integer seed for MONAI's transforms, which take a legacy ``RandomState``, drawn from ``rng``."""
    return int(rng.integers(2**31 - 1))


# --- intensity shifts -------------------------------------------------------------------------------------------


def gaussian_noise(images, labels, rng, sigma):
    """Additive N(0, sigma^2) noise, sigma in 8-bit grey levels: the robustness test of Darooei et al. 2023
    (Table 4), which the project runs at sigma 10 and 20 (``octfluid evaluate --noise-sigma``)."""
    from monai.transforms import RandGaussianNoise

    noise = RandGaussianNoise(prob=1.0, mean=0.0, std=_grey(sigma), dtype=np.float32, sample_std=False)  # exactly sigma
    noise.set_random_state(seed=_seed(rng))
    return _back(np.asarray(noise(_unit(images))), images), labels


def speckle(images, labels, rng, contrast):
    """Multiplicative speckle of an unaveraged scan: each pixel times a Gamma(L, 1/L) draw of mean 1 and standard
    deviation ``contrast`` = 1/sqrt(L) (fully developed speckle has 1; Spectralis averages it away by ART)."""
    looks = 1.0 / max(contrast, 1e-3) ** 2
    gain = rng.gamma(looks, 1.0 / looks, images.shape).astype(np.float32)
    return _back(_unit(images) * gain, images), labels


def noise_floor(images, labels, rng, level):
    """An additive noise floor: Rayleigh-distributed background of mean ``level`` 8-bit grey levels everywhere,
    as a less sensitive device or an unaveraged scan shows it in the vitreous and in export padding."""
    scale = _grey(level) / np.sqrt(np.pi / 2)  # the Rayleigh mean is scale * sqrt(pi/2)
    return _back(_unit(images) + rng.rayleigh(scale, images.shape).astype(np.float32), images), labels


def gamma(images, labels, rng, exponent):
    """Another display curve: intensities (as fractions of their range) to the power ``exponent``."""
    from monai.transforms import AdjustContrast

    return _back(np.asarray(AdjustContrast(gamma=exponent)(_unit(images))), images), labels


def contrast(images, labels, rng, factor):
    """Contrast scaled by ``factor`` around each B-scan's mean (below 1: a flatter, greyer scan)."""
    unit = _unit(images)
    mean = np.nanmean(unit, axis=(1, 2), keepdims=True)
    return _back(mean + factor * (unit - mean), images), labels


def brightness(images, labels, rng, offset):
    """``offset`` 8-bit grey levels added everywhere (negative: darker)."""
    return _back(_unit(images) + _grey(offset), images), labels


def defocus(images, labels, rng, sigma):
    """Defocus: a Gaussian blur of ``sigma`` pixels in the plane of each B-scan."""
    from monai.transforms import GaussianSmooth

    blurred = GaussianSmooth(sigma=(sigma, sigma))(_unit(images))  # channel-first: each B-scan on its own
    return _back(np.asarray(blurred), images), labels


def vessel_shadows(images, labels, rng, depth):
    """Vessel shadows: vertical bands (A-scans 4-16 pixels wide, one per ~150 columns) darkened by ``depth``
    (0: none, 1: black) from a random row down, as retinal vessels shade the tissue under them."""
    unit = _unit(images)
    n_bscans, height, width = unit.shape
    gain = np.ones(unit.shape, np.float32)
    for z in range(n_bscans):
        for _ in range(max(1, width // 150)):
            centre, half = rng.integers(width), rng.integers(2, 9)
            top = rng.integers(0, height // 3)
            left, right = max(centre - half, 0), min(centre + half, width)
            profile = 1 - depth * np.exp(-2 * ((np.arange(left, right) - centre) / half) ** 2)
            gain[z, top:, left:right] = np.minimum(gain[z, top:, left:right], profile.astype(np.float32))
    return _back(unit * gain, images), labels


def media_opacity(images, labels, rng, depth):
    """Signal drop-out behind a media opacity (cataract, vitreous floaters): a broad lateral dip in signal,
    a quarter of the B-scan wide and ``depth`` deep at its centre, over a scan dimmed by ``depth / 3``."""
    unit = _unit(images)
    n_bscans, _, width = unit.shape
    columns = np.arange(width)
    gains = []
    for _ in range(n_bscans):
        centre, spread = rng.uniform(0.2, 0.8) * width, width / 8
        gains.append((1 - depth / 3) * (1 - depth * np.exp(-(((columns - centre) / spread) ** 2))))
    gain = np.asarray(gains, np.float32)[:, None, :]
    return _back(unit * gain, images), labels


def jpeg(images, labels, rng, quality):
    """Lossy JPEG compression at ``quality`` (1-100) of each B-scan as an 8-bit image (imagecodecs' libjpeg),
    as PACS exports and screenshots of viewers deliver scans."""
    import imagecodecs

    unit = np.nan_to_num(_unit(images))
    out = np.empty(unit.shape, np.float32)
    for z, bscan in enumerate(unit):
        encoded = imagecodecs.jpeg_encode(np.rint(bscan * 255).astype(np.uint8), level=int(quality))
        out[z] = imagecodecs.jpeg_decode(encoded).astype(np.float32) / 255
    return _back(out, images), labels


# --- geometric shifts -------------------------------------------------------------------------------------------


def _resampled(images: np.ndarray, labels: np.ndarray, shape: tuple[int, int, int]):
    """Images (bilinear, anti-aliased when shrinking) and labels (nearest) resampled onto the same grid."""
    from skimage.transform import resize

    shrinking = any(new < old for new, old in zip(shape, images.shape))
    unit = resize(np.nan_to_num(_unit(images)), shape, order=1, anti_aliasing=shrinking, preserve_range=True)
    moved = resize(labels, shape, order=0, anti_aliasing=False, preserve_range=True).astype(labels.dtype)
    return _back(unit.astype(np.float32), images), moved


def axial_resampling(images, labels, rng, factor):
    """Rows times ``factor``: another axial pixel size (0.5 to 2 for about 4 to 2 micrometres per row)."""
    z, height, width = images.shape
    return _resampled(images, labels, (z, max(1, round(height * factor)), width))


def lateral_resampling(images, labels, rng, factor):
    """A-scans times ``factor``: another lateral sampling (e.g. 512 instead of 1024 A-scans over the same width)."""
    z, height, width = images.shape
    return _resampled(images, labels, (z, height, max(1, round(width * factor))))


def registration_border(images, labels, rng, share, fill: float = 0.0, jitter: float = 3.0):
    """Registration padding: each B-scan moved sideways by up to ``share`` of its width (and down by up to half
    that share of its height), the uncovered border filled with ``fill`` (a fraction of the range) plus up to
    ``jitter`` 8-bit grey levels of noise, as exports of registered volumes fill it (0-2, not exactly 0).
    The padding is background in the labels: no tissue, so no fluid."""
    unit = _unit(images)
    n_bscans, height, width = unit.shape
    out = np.empty_like(unit)
    moved = np.full_like(labels, BACKGROUND)
    for z in range(n_bscans):
        dx = int(rng.integers(-round(share * width), round(share * width) + 1))
        dy = int(rng.integers(0, round(share * height / 2) + 1))
        noise = rng.uniform(0, _grey(jitter), (height, width)).astype(np.float32)
        out[z] = np.clip(fill + noise if fill < 0.5 else fill - noise, 0, 1)
        source = (slice(0, height - dy), slice(max(-dx, 0), width - max(dx, 0)))
        target = (slice(dy, height), slice(max(dx, 0), width - max(-dx, 0)))
        out[z][target] = unit[z][source]
        moved[z][target] = labels[z][source]
    return _back(out, images), moved


def white_border(images, labels, rng, share):
    """As :func:`registration_border`, with saturated (white) padding, as some viewers blank the background."""
    return registration_border(images, labels, rng, share, fill=1.0)


# --- combined presets -------------------------------------------------------------------------------------------


def _chain(*steps: tuple[str, float]) -> ShiftFunction:
    """Shifts of :data:`SHIFTS` applied in turn, each at the level listed (a preset's own strength is its name)."""

    def function(images, labels, rng, strength):
        for name, level in steps:
            images, labels = SHIFTS[name].function(images, labels, rng, level)
        return images, labels

    return function


_SINGLE = [
    Shift(
        "gaussian_noise", 20.0, "additive Gaussian noise, sigma in 8-bit grey levels (paper's Table 4)", gaussian_noise
    ),
    Shift("speckle", 0.5, "multiplicative speckle of an unaveraged scan, speckle contrast", speckle),
    Shift("noise_floor", 12.0, "additive Rayleigh noise floor, mean in 8-bit grey levels", noise_floor),
    Shift("axial_x2", 2.0, "twice the rows per B-scan (finer axial sampling)", axial_resampling),
    Shift("axial_x0.5", 0.5, "half the rows per B-scan (coarser axial sampling)", axial_resampling),
    Shift("lateral_x0.5", 0.5, "half the A-scans per B-scan", lateral_resampling),
    Shift("lateral_x1.5", 1.5, "1.5 times the A-scans per B-scan", lateral_resampling),
    Shift("gamma", 1.6, "display gamma, exponent on the intensity fraction", gamma),
    Shift("contrast", 0.7, "contrast around each B-scan's mean, factor", contrast),
    Shift("brightness", 25.0, "brightness offset in 8-bit grey levels", brightness),
    Shift("defocus", 2.0, "Gaussian blur, sigma in pixels", defocus),
    Shift("vessel_shadows", 0.7, "vessel shadows, darkening at the band centre", vessel_shadows),
    Shift("media_opacity", 0.6, "signal drop-out behind a media opacity, depth", media_opacity),
    Shift("jpeg", 30.0, "lossy JPEG compression, quality", jpeg),
    Shift("registration_border", 0.08, "noisy near-black padding, shift as a share of the width", registration_border),
    Shift("white_border", 0.08, "saturated padding, shift as a share of the width", white_border),
]
SHIFTS: dict[str, Shift] = {shift.name: shift for shift in _SINGLE}

# other devices, roughly: an unaveraged Spectralis-like scan (the failing case), a Cirrus-like one
# (1024 rows over 2 mm, 512 A-scans over 6 mm, grainy and flatter), and a Topcon-like export (JPEG, softer, darker)
_PRESETS = [
    Shift(
        "vendor_unaveraged",
        1.0,
        "speckle, noise floor, twice the rows, gamma 1.3, contrast 0.8",
        _chain(("speckle", 0.5), ("noise_floor", 12.0), ("axial_x2", 2.0), ("gamma", 1.3), ("contrast", 0.8)),
    ),
    Shift(
        "vendor_cirrus_like",
        1.0,
        "twice the rows, half the A-scans, speckle 0.3, noise floor 8, contrast 0.8",
        _chain(("axial_x2", 2.0), ("lateral_x0.5", 0.5), ("speckle", 0.3), ("noise_floor", 8.0), ("contrast", 0.8)),
    ),
    Shift(
        "vendor_topcon_like",
        1.0,
        "blur 1.2 px, gamma 0.8, brightness -10, JPEG quality 40, near-black borders",
        _chain(("defocus", 1.2), ("gamma", 0.8), ("brightness", -10.0), ("jpeg", 40.0), ("registration_border", 0.05)),
    ),
]
SHIFTS.update({shift.name: shift for shift in _PRESETS})
