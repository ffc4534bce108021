"""A scan's spacing as users type it and as octfluid keeps it: one unit where a person types a spacing
(micrometres, the unit OCT devices report their voxel size in), millimetres inside, one rule for what an OCT's
spacing can be, and where a spacing came from.

The rule refuses a value that is implausible in micrometres but plausible in another unit (millimetres or metres
typed into a micrometre field, nanometres typed for micrometres) with one line that says what to type, so that no
absurd volume is ever printed (issue 20: micrometres given as millimetres printed 302 billion nL).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

AXES = ("between B-scans", "along depth", "along width")
UM_PER_MM = 1000.0

# What an OCT's spacing can be, in micrometres, per axis (B-scan, depth, width). Depth pixels are 1-10 um apart
# and A-scans 3-40 um (widefield included); B-scans from a few micrometres (dense rasters) to about a millimetre
# (sparse ones). The bounds are wide on purpose: they catch a unit slip (a factor of 1000), not an unusual device.
PLAUSIBLE_UM = ((1.0, 2000.0), (0.1, 100.0), (0.1, 200.0))

# Where a spacing came from, as the layer metadata, the sidecar and the quantify CSV name it.
SPACING_SOURCE_KEY = "spacing_source"
ENTERED_BY_USER = "entered by the user"
UNKNOWN_SOURCE = "unknown"

Spacing = tuple[float | None, float | None, float | None]


class SpacingError(ValueError):
    """A spacing that cannot be an OCT's (not a positive finite number, or a unit slip); the message says what to
    type instead."""


def _suggestion(value_um: float, low: float, high: float) -> str:
    """What the user probably meant, when ``value_um`` read in another unit lands in ``[low, high]``."""
    for factor, unit in ((UM_PER_MM, "mm"), (1e6, "m"), (1e-3, "nm")):
        meant = value_um * factor
        if low <= meant <= high:
            return f"; did you mean {meant:.4g} um ({value_um:g} {unit})?"
    return f" (an OCT's is {low:g} to {high:g} um)."


def _check_axis(value_um: float, axis: int) -> float:
    name = AXES[axis]
    if isinstance(value_um, bool) or not isinstance(value_um, (int, float, np.number)) or not math.isfinite(value_um):
        raise SpacingError(f"the spacing {name} must be a number of micrometres above zero, not {value_um}.")
    if value_um <= 0:
        raise SpacingError(f"the spacing {name} must be a number of micrometres above zero, not {value_um:g}.")
    low, high = PLAUSIBLE_UM[axis]
    if not low <= value_um <= high:
        raise SpacingError(f"{value_um:g} um is not an OCT pixel size {name}{_suggestion(value_um, low, high)}")
    return float(value_um)


def _three(values: Sequence) -> None:
    if len(values) != 3:
        raise SpacingError(f"the spacing has 3 values (between B-scans, along depth, along width), not {len(values)}.")


def spacing_mm_from_um(spacing_um: Sequence[float | None]) -> Spacing:
    """The spacing in mm of one a user typed in micrometres (B-scan, depth, width; ``None`` where unknown), after
    the plausibility rule: the one entry point of the command line's ``--spacing`` and the Quantify widget.

    Raises
    ------
    SpacingError
        For a value that is not a finite number above zero, or not an OCT's in micrometres, as one line that says
        what to type, e.g. "0.0039 um is not an OCT pixel size along depth; did you mean 3.9 um (0.0039 mm)?".
    """
    _three(spacing_um)
    return tuple(  # type: ignore[return-value]
        None if value is None else _check_axis(value, axis) / UM_PER_MM for axis, value in enumerate(spacing_um)
    )


def check_spacing(spacing_mm: Sequence[float | None]) -> Spacing:
    """``spacing_mm`` (as files and layers keep it) if every known value passes the rule of
    :func:`spacing_mm_from_um`; the message speaks micrometres, the unit the user types a correction in."""
    _three(spacing_mm)
    for axis, value in enumerate(spacing_mm):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            _check_axis(value, axis)  # raises with the right words
        _check_axis(float(value) * UM_PER_MM, axis)
    return tuple(None if value is None else float(value) for value in spacing_mm)  # type: ignore[return-value]


def plausible_axes(spacing_mm: Sequence[float | None]) -> tuple[Spacing, list[str]]:
    """``spacing_mm`` as a file states it, with each axis that is no OCT's pixel size (the rule of
    :func:`spacing_mm_from_um`) made unknown, and the problems found (one line each). A spacing is never guessed,
    and a file's is no exception: a TIFF saved at 300 dpi states 84.7 um a pixel, which resampled a B-scan 22 times
    in depth and gave 505 mm^2 of fluid."""
    _three(spacing_mm)
    kept: list[float | None] = []
    problems: list[str] = []
    for axis, value in enumerate(spacing_mm):
        try:
            kept.append(None if value is None else _check_axis(float(value) * UM_PER_MM, axis) / UM_PER_MM)
        except (SpacingError, TypeError, ValueError) as error:
            kept.append(None)
            problems.append(str(error))
    return tuple(kept), problems  # type: ignore[return-value]


OVERRIDE_TOLERANCE = 0.01  # a typed spacing within 1 % of the file's is the same one, rounded


def given_over_recorded(given_mm: Sequence[float | None] | None, recorded_mm: Sequence[float | None]):
    """The spacing to use when a user gives one (``--spacing``) for a file that may record its own: the given value
    on each axis where there is one, the file's elsewhere; and, for the notice, the axes (in :data:`AXES`' words,
    with the file's value) where the given one replaces a different value the file records. Replacing is allowed
    (a file's spacing can be wrong), never silent: 240 um typed for a file of 120 um doubled a volume unnoticed."""
    given = tuple(given_mm) if given_mm else (None, None, None)
    chosen = tuple(value if value is not None else recorded for value, recorded in zip(given, recorded_mm))
    replaced = [
        f"{AXES[axis]} {recorded * UM_PER_MM:.4g} um"
        for axis, (value, recorded) in enumerate(zip(given, recorded_mm))
        if value is not None and recorded is not None and abs(value - recorded) > OVERRIDE_TOLERANCE * recorded
    ]
    return chosen, replaced


def spacing_um_text(spacing_mm: Sequence[float | None]) -> str:
    """``120, 3.9, 11.8 um`` (``unknown`` for an unknown axis): how the spacing is shown to a user."""
    return ", ".join("unknown" if s is None else f"{s * UM_PER_MM:.4g}" for s in spacing_mm) + " um"
