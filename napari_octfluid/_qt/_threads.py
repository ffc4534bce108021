"""The widgets' torch threads: chosen as the command line chooses them (``devices.choose_threads``), less one core
left to napari's interface.

PyTorch uses every core by default; on a 2-core laptop the Qt event loop then waits for a core and the
interface stalls for up to a second at a time.
"""

from __future__ import annotations

import functools
from typing import Callable, Generator

import torch

from ..devices import choose_threads

INTERFACE_CORES = 1


def interface_friendly_threads(requested: int | None = None) -> int:
    """The threads for a widget's job: the user's setting where given, else the command line's choice from the
    cores free now, less the interface's core."""
    return choose_threads(requested, reserved=INTERFACE_CORES)


def with_threads(job: Callable[..., Generator], threads: int) -> Callable[..., Generator]:
    """``job`` (a generator function) run with ``threads`` torch threads in the worker thread that runs it, and the
    worker's count put back after. With OpenMP (torch's CPU builds) the count belongs to each thread: one set in the
    main thread never reaches a worker that napari's thread pool reuses, which keeps the count of its first job."""

    @functools.wraps(job)  # napari names the task after the function
    def run(*args) -> Generator:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return (yield from job(*args))
        finally:
            torch.set_num_threads(before)

    return run
