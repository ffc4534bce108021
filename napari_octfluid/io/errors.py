"""The error every reader raises for a file it cannot use, with a message meant for a person."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..memory import MemoryBudgetError, array_bytes, check_allocation, within_budget


class OctReadError(ValueError):
    """A scan file could not be opened; ``str(error)`` names the file, the problem and what to do."""

    def __init__(self, path: str | Path, problem: str, advice: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.advice = advice
        message = f"{self.path.name}: {problem}"
        if advice:
            message += f" {advice}"
        super().__init__(message)


class ScanTooLargeError(OctReadError, MemoryBudgetError):
    """A scan whose declared size exceeds octfluid's memory budget, refused before anything was decoded.

    Both an :class:`OctReadError` (the napari reader and the command line report it as one line naming the
    file) and a :class:`~napari_octfluid.memory.MemoryBudgetError` (a ``MemoryError``: code that handles
    running out of memory handles it too).
    """

    def __init__(self, path: str | Path, budget_error: MemoryBudgetError) -> None:
        super().__init__(path, str(budget_error))
        self.needed = budget_error.needed
        self.limit = budget_error.limit


def check_scan_allocation(path: str | Path, nbytes: int, what: str) -> None:
    """:func:`~napari_octfluid.memory.check_allocation` for a scan file: the refusal names the file."""
    try:
        check_allocation(nbytes, what)
    except MemoryBudgetError as error:
        raise ScanTooLargeError(path, error) from None


def scan_fits_budget(path: str | Path, nbytes: int) -> bool:
    """:func:`~napari_octfluid.memory.within_budget`, with a bad limit setting reported against the file."""
    try:
        return within_budget(nbytes)
    except MemoryBudgetError as error:
        raise ScanTooLargeError(path, error) from None


def describe_declared(shape: tuple[int, ...], dtype: np.dtype | type | str) -> str:
    """``1000 x 5000 x 5000 uint8``: a declared array as the messages name it."""
    return " x ".join(str(int(size)) for size in shape) + f" {np.dtype(dtype).name}"


__all__ = [
    "OctReadError",
    "ScanTooLargeError",
    "array_bytes",
    "check_scan_allocation",
    "describe_declared",
    "scan_fits_budget",
]
